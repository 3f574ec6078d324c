// `etcd-lab down`: containers and network go; data volumes stay unless --volumes.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import type { Engine } from '../engine/engine.js';
import { kindNetworkName } from '../runtime/kind-cli.js';
import { LabRuntime } from '../runtime/lab.js';
import type { LoadOptions } from '../config/load.js';
import { withLab } from './session.js';
import { LABEL, type Role } from '../config/topology.js';
import { APISERVER_DIR, APISERVER_FILES } from '../render/apiserver.js';
import { ExitCode } from '../exit-codes.js';

export interface DownOptions extends LoadOptions {
  volumes?: boolean;
  yes?: boolean;
  /** Remove the lab even though another checkout made it (one whose checkout is gone, say). */
  takeOver?: boolean;
  /** Asks the person at the terminal; absent when there is none. */
  confirm?: (question: string) => Promise<boolean>;
  engine?: Engine;
}

export interface DownResult {
  name: string;
  removed: { containers: string[]; networks: string[]; volumes: string[] };
  keptVolumes: string[];
}

export async function down(opts: DownOptions, reporter: Reporter): Promise<DownResult> {
  return withLab(opts, { lock: 'down', takeOver: opts.takeOver }, reporter, (runtime) => downLab(runtime, opts, reporter));
}

async function downLab(runtime: LabRuntime, opts: DownOptions, reporter: Reporter): Promise<DownResult> {
  const { lab, engine } = runtime;
  if (opts.takeOver) {
    const owners = await runtime.foreignOwners();
    if (owners.length > 0) reporter.warn(`--take-over: removing lab "${lab.spec.name}", made by ${owners.join(', ')}`);
  }
  const [containers, networks, volumes] = await Promise.all([runtime.containers(), runtime.networks(), runtime.volumes()]);

  if (opts.volumes && volumes.length > 0 && !opts.yes) {
    if (!opts.confirm) {
      throw new UserError(`refusing to delete the data of lab "${lab.spec.name}" (${volumes.length} volumes) without confirmation`, {
        hint: 'there is no terminal to ask: add --yes to delete it, or leave out --volumes to keep it',
      });
    }
    if (!(await opts.confirm(`Delete the etcd data of lab "${lab.spec.name}" (${volumes.join(', ')})? This cannot be undone.`))) {
      throw new UserError('nothing was removed', { exitCode: ExitCode.nothingDone });
    }
  }

  const kindNetwork = kindNetworkName();
  if (containers.some((c) => c.labels[LABEL.role] === 'haproxy' && c.networks.includes(kindNetwork))) {
    reporter.warn(`HAProxy is attached to the "${kindNetwork}" network: a KIND cluster made by \`etcd-lab kind\` loses its etcd now (\`etcd-lab kind --delete\` removes it)`);
  }

  const removed: DownResult['removed'] = { containers: [], networks: [], volumes: [] };
  if (containers.length > 0) {
    await reporter.step(`stop and remove ${containers.length} containers`, (step) =>
      runtime.removeContainers(containers, (name) => {
        removed.containers.push(name);
        step.update(`${removed.containers.length}/${containers.length} removed`);
      }),
    );
  }
  if (containers.some((c) => c.labels[LABEL.role] === ('apiserver' satisfies Role))) {
    // Its kubeconfig names a port that is gone now: `etcd-lab env` stops exporting it. (A context merged
    // into a person's kubeconfig stays, as kind's does until `kind delete`: `etcd-lab apiserver --delete` takes it out.)
    await rm(join(lab.outDir, APISERVER_DIR, APISERVER_FILES.kubeconfig), { force: true });
  }
  for (const network of networks) {
    await reporter.step(`remove network ${network.name}`, () => engine.networks.remove(network.id));
    removed.networks.push(network.name);
  }
  if (opts.volumes && volumes.length > 0) {
    await reporter.step(`remove ${volumes.length} data volumes`, async () => {
      for (const v of volumes) {
        await engine.volumes.remove(v);
        removed.volumes.push(v);
      }
    });
  }
  removed.containers.sort();
  return { name: lab.spec.name, removed, keptVolumes: opts.volumes ? [] : volumes };
}
