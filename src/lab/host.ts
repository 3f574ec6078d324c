// What makes this machine able to run a lab, lab or no lab: the host set-up script (Docker engine,
// compose v2, debootstrap; kind, Chromium, etcdctl on request) and the local images built from
// Debian packages for machines that cannot pull.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Reporter } from '../progress.js';
import { buildLocalImages, type BuildImagesOptions } from '../runtime/images.js';

export type HostFeature = 'images' | 'kind' | 'browser' | 'clients';

/**
 * Runs scripts/setup-host.sh (it ships in the package, so this works from a team's repository as
 * from a clone) on this terminal: apt and dockerd speak for themselves, and Ctrl-C reaches them too.
 * Resolves with the script's exit code.
 */
export function setUpHost(features: HostFeature[]): Promise<number> {
  const script = fileURLToPath(new URL('../../scripts/setup-host.sh', import.meta.url));
  return new Promise<number>((resolve, reject) => {
    const child = spawn('bash', [script, ...features.map((f) => `--${f}`)], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
}

/** The local etcd and HAProxy images (and etcd 3.4 on request), built unless present or `force`. */
export function buildImages(opts: BuildImagesOptions, reporter: Reporter): ReturnType<typeof buildLocalImages> {
  return buildLocalImages(opts, reporter);
}
