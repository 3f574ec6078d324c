// `etcd-lab down`: containers and network go; data volumes stay unless --volumes.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import type { ContainerInfo, Engine, NetworkInfo } from '../engine/engine.js';
import { kindNetworkName } from '../runtime/kind-cli.js';
import { LabRuntime } from '../runtime/lab.js';
import type { LoadOptions } from '../config/load.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { Interrupted } from '../interrupt.js';
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

/** What down's steps share, and what it removed so far. */
interface DownContext {
  runtime: LabRuntime;
  opts: DownOptions;
  reporter: Reporter;
  containers: ContainerInfo[];
  networks: NetworkInfo[];
  volumes: string[];
  removed: DownResult['removed'];
}

/**
 * Down as steps. Nothing is undone (what is removed is gone); each step finds what is left, so
 * running down again after a stop finishes the job.
 */
export const DOWN_STEPS: Step<DownContext>[] = [
  // Its own lines: a question may be asked at the terminal here.
  { title: 'what the lab has', reportsItself: true, run: survey },
  {
    title: (ctx) => `stop and remove ${ctx.containers.length} containers`,
    when: (ctx) => ctx.containers.length > 0,
    run: ({ runtime, containers, removed }, step) =>
      runtime.removeContainers(containers, (name) => {
        removed.containers.push(name);
        step.update(`${removed.containers.length}/${containers.length} removed`);
      }),
  },
  {
    // Its kubeconfig names a port that is gone now: `etcd-lab env` stops exporting it. (A context merged
    // into a person's kubeconfig stays, as kind's does until `kind delete`: `etcd-lab apiserver --delete` takes it out.)
    title: "forget the API server's kubeconfig",
    when: (ctx) => ctx.containers.some((c) => c.labels[LABEL.role] === ('apiserver' satisfies Role)),
    run: async ({ runtime }) => rm(join(runtime.lab.outDir, APISERVER_DIR, APISERVER_FILES.kubeconfig), { force: true }),
  },
  {
    title: (ctx) => `remove network ${ctx.networks.map((n) => n.name).join(', ')}`,
    when: (ctx) => ctx.networks.length > 0,
    run: async ({ runtime, networks, removed }) => {
      for (const network of networks) {
        await runtime.removeNetwork(network);
        removed.networks.push(network.name);
      }
    },
  },
  {
    title: (ctx) => `remove ${ctx.volumes.length} data volumes`,
    when: (ctx) => Boolean(ctx.opts.volumes) && ctx.volumes.length > 0,
    run: async ({ runtime, volumes, removed }) => {
      for (const v of volumes) {
        await runtime.removeVolume(v);
        removed.volumes.push(v);
      }
    },
  },
];

/** What there is to remove; the go-ahead to delete data; the KIND cluster that loses its etcd. */
async function survey(ctx: DownContext): Promise<void> {
  const { runtime, opts, reporter } = ctx;
  const { lab } = runtime;
  if (opts.takeOver) {
    const owners = await runtime.foreignOwners();
    if (owners.length > 0) reporter.warn(`--take-over: removing lab "${lab.spec.name}", made by ${owners.join(', ')}`);
  }
  [ctx.containers, ctx.networks, ctx.volumes] = await Promise.all([runtime.containers(), runtime.networks(), runtime.volumes()]);
  if (opts.volumes && ctx.volumes.length > 0 && !opts.yes) {
    if (!opts.confirm) {
      throw new UserError(`refusing to delete the data of lab "${lab.spec.name}" (${ctx.volumes.length} volumes) without confirmation`, {
        hint: 'there is no terminal to ask: add --yes to delete it, or leave out --volumes to keep it',
      });
    }
    if (!(await opts.confirm(`Delete the etcd data of lab "${lab.spec.name}" (${ctx.volumes.join(', ')})? This cannot be undone.`))) {
      throw new UserError('nothing was removed', { exitCode: ExitCode.nothingDone });
    }
  }
  const kindNetwork = kindNetworkName();
  if (ctx.containers.some((c) => c.labels[LABEL.role] === 'haproxy' && c.networks.includes(kindNetwork))) {
    reporter.warn(`HAProxy is attached to the "${kindNetwork}" network: a KIND cluster made by \`etcd-lab kind\` loses its etcd now (\`etcd-lab kind --delete\` removes it)`);
  }
}

async function downLab(runtime: LabRuntime, opts: DownOptions, reporter: Reporter): Promise<DownResult> {
  const ctx: DownContext = { runtime, opts, reporter, containers: [], networks: [], volumes: [], removed: { containers: [], networks: [], volumes: [] } };
  await runSteps(DOWN_STEPS, ctx, reporter, {
    command: 'down',
    failure: (error) => {
      const { containers, networks, volumes } = ctx.removed;
      const gone = [...containers, ...networks.map((n) => `network ${n}`), ...volumes.map((v) => `volume ${v}`)];
      if (!(error instanceof Interrupted) || gone.length === 0) return error;
      return new Interrupted(`down interrupted; removed ${gone.join(', ')}`, '`etcd-lab down` again removes the rest');
    },
  });
  ctx.removed.containers.sort();
  return { name: runtime.lab.spec.name, removed: ctx.removed, keptVolumes: opts.volumes ? [] : ctx.volumes };
}
