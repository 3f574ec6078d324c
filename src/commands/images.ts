export { buildLocalImages } from '../runtime/images.js';
