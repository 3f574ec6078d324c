// Templates are plain files in lab-templates/, found relative to this module so they work from
// a clone, from dist/ and from an installed package alike.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';

export const TEMPLATES_DIR = fileURLToPath(new URL('../../lab-templates/', import.meta.url));

/** The JSON Schema of etcd-lab.yaml, shipped for editors (a test keeps it equal to specJsonSchema()). */
export const SCHEMA_FILE = `${TEMPLATES_DIR}etcd-lab.schema.json`;

const compiled = new Map<string, ejs.TemplateFunction>();

/** Renders lab-templates/<name> with a prepared view: the template only prints. */
export function renderTemplate(name: string, view: Record<string, unknown>): string {
  let template = compiled.get(name);
  if (!template) {
    const source = readFileSync(new URL(name, `file://${TEMPLATES_DIR}`), 'utf8');
    template = ejs.compile(source, { strict: true, localsName: 'view', destructuredLocals: Object.keys(view) });
    compiled.set(name, template);
  }
  return template(view);
}
