// `etcd-lab logs [member]`: container logs of one member (or haproxy), or of all with a prefix.
import { PassThrough } from 'node:stream';
import { UserError } from '../errors.js';
import type { LabRuntime } from '../runtime/lab.js';
import type { LoadOptions } from '../config/load.js';
import { silentReporter } from '../progress.js';
import { withLab } from './session.js';
import { LABEL } from '../config/topology.js';

export interface LogsOptions extends LoadOptions {
  member?: string;
  follow?: boolean;
  tail?: number;
}

/** A stream that writes each line to `out` with a prefix. */
function prefixed(prefix: string, out: NodeJS.WritableStream): PassThrough {
  const stream = new PassThrough();
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) out.write(`${prefix}${line}\n`);
  });
  stream.on('end', () => rest && out.write(`${prefix}${rest}\n`));
  return stream;
}

export async function logs(opts: LogsOptions): Promise<void> {
  return withLab(opts, {}, silentReporter, (runtime) => showLogs(runtime, opts));
}

async function showLogs(runtime: LabRuntime, opts: LogsOptions): Promise<void> {
  const { lab } = runtime;
  const containers = await runtime.containers();
  const nameOf = (c: (typeof containers)[number]) => c.labels[LABEL.member] ?? c.labels[LABEL.role] ?? c.name;
  const known = containers.map(nameOf).sort();
  if (containers.length === 0) throw new UserError(`lab "${lab.spec.name}" has no containers`, { hint: 'start it with `etcd-lab up`' });
  const chosen = opts.member ? containers.filter((c) => nameOf(c) === opts.member || c.name === opts.member) : containers;
  if (chosen.length === 0) throw new UserError(`no member or service "${opts.member}" in lab "${lab.spec.name}"`, { hint: `choose one of: ${known.join(', ')}` });

  const width = Math.max(...chosen.map((c) => nameOf(c).length));
  await Promise.all(
    chosen.map((c) => {
      const single = chosen.length === 1;
      const prefix = single ? '' : `${nameOf(c).padEnd(width)} | `;
      const stdout = single ? process.stdout : prefixed(prefix, process.stdout);
      const stderr = single ? process.stderr : prefixed(prefix, process.stdout);
      return runtime.logs(c, { follow: Boolean(opts.follow), tail: opts.tail, stdout, stderr }).finally(() => {
        if (!single) {
          (stdout as PassThrough).end();
          (stderr as PassThrough).end();
        }
      });
    }),
  );
}
