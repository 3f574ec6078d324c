// `etcd-lab up`: an ordered list of steps, each with a progress line. Whatever this run created is
// removed again when a later step fails or the user presses Ctrl-C, unless --retain.
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { UserError } from '../errors.js';
import type { Reporter, StepHandle } from '../progress.js';
import { COMPOSE_FILE, ENV_FILE, HAPROXY_FILE, renderLab } from '../render/index.js';
import { pkiDirOf } from '../render/pki.js';
import { configHashOf } from '../render/haproxy.js';
import { CA } from '../runtime/pki.js';
import { isConflict, lastWords, type ContainerInfo, type Engine } from '../engine/engine.js';
import { LOCAL_IMAGES, type ImageChoice } from '../runtime/images.js';
import { LabRuntime } from '../runtime/lab.js';
import { checkMembership, checkNetwork, checkPorts } from '../runtime/preflight.js';
import { collectStatus, type LabStatus } from '../runtime/status.js';
import { waitUntilReady } from '../runtime/readiness.js';
import type { LoadOptions } from '../config/load.js';
import { withLab } from './session.js';
import { runSteps, type Step } from './steps.js';
import { HAPROXY_CLIENT_PORT, HAPROXY_STATS_PORT, LABEL } from '../config/topology.js';
import { ensureLabPki, warnIfEnvCommittable, writeLabFiles } from './generate.js';
import { ExitCode } from '../exit-codes.js';

export interface UpOptions extends LoadOptions {
  /** Keep what this run created when it fails (for debugging). */
  retain?: boolean;
  /** Deadline for the lab to become ready, from `docker compose up` on. */
  timeoutMs?: number;
  engine?: Engine;
}

export interface UpResult {
  name: string;
  /** True when the lab was already up and nothing changed. */
  alreadyUp: boolean;
  elapsedMs: number;
  clientEndpoint: string;
  statsUrl: string;
  credentialsFile: string;
  images: ImageChoice;
  status: LabStatus;
}

interface Before {
  containers: Set<string>;
  /** Names of the lab's containers before this run: one compose recreated stands for the lab, not for this run. */
  names: Set<string>;
  volumes: Set<string>;
  network: boolean;
}

/** Image lines are compared against the running containers instead (a local fallback is not a change). */
const withoutImages = (env: string | undefined) => env?.replace(/^ETCD_LAB_(ETCD|HAPROXY)_IMAGE=.*$/gm, '');

/**
 * Every container of the lab runs, from the files and images this run would use. A container on the
 * local stand-in image counts as current while the spec's own image is not on this machine.
 */
async function isAlreadyUp(runtime: LabRuntime, running: ContainerInfo[]): Promise<boolean> {
  const { spec, local, outDir, owner } = runtime.lab;
  running = running.filter((c) => c.labels[LABEL.role] === 'etcd' || c.labels[LABEL.role] === 'haproxy');
  if (running.length !== spec.members + 1 || running.some((c) => c.state !== 'running')) return false;
  const files = renderLab({ spec, local, endpointMode: 'network', owner, hostPkiDir: pkiDirOf(outDir) });
  for (const name of [COMPOSE_FILE, HAPROXY_FILE, ENV_FILE]) {
    const existing = await readFile(join(outDir, name), 'utf8').catch(() => undefined);
    const same = name === ENV_FILE ? withoutImages(existing) === withoutImages(files.get(name)) : existing === files.get(name);
    if (!same) return false;
  }
  // HAProxy on that file: a changed haproxy.cfg (a new health check, say) means a reload.
  if ((await runtime.haproxyConfigHash()) !== configHashOf(files.get(HAPROXY_FILE)!)) return false;
  for (const c of running) {
    const kind = c.labels[LABEL.role] === 'haproxy' ? 'haproxy' : 'etcd';
    const wanted = kind === 'etcd' ? local.etcdImage : local.haproxyImage;
    if (c.image === wanted) continue;
    const fallbackStands = c.image === LOCAL_IMAGES[kind] && !(await runtime.imageExists(wanted));
    if (!fallbackStands) return false;
  }
  return true;
}

/**
 * Removes what did not exist before this run: containers, then the network, then volumes. In rounds:
 * after compose was stopped half-way, the engine may still finish a container it was asked to
 * create, which then holds the network and a volume; the next round takes it too.
 */
async function rollBack(runtime: LabRuntime, before: Before, reporter: Reporter): Promise<string[]> {
  const removed = new Set<string>();
  const kept = new Set<string>();
  const deadline = Date.now() + 20_000;
  // New since this run started, and not a recreated container of a lab that ran before (that one is the lab's).
  const newSince = async () => {
    const fresh = (await runtime.containers()).filter((c) => !before.containers.has(c.id));
    fresh.filter((c) => before.names.has(c.name)).forEach((c) => kept.add(c.name));
    return fresh.filter((c) => !before.names.has(c.name));
  };
  await reporter.step('roll back what this run created', async (step) => {
    for (;;) {
      const blocked: string[] = [];
      const created = await newSince();
      if (created.length > 0) step.update(`removing ${created.map((c) => c.name).join(', ')}`);
      await Promise.all(created.map((c) => runtime.removeContainer(c, 2)));
      created.forEach((c) => removed.add(c.name));
      const remove = async (name: string, action: () => Promise<void>) => {
        try {
          await action();
          removed.add(name);
        } catch (error) {
          if (!isConflict(error)) throw error;
          blocked.push(name); // still in use by a container that appeared meanwhile
        }
      };
      if (!before.network) {
        for (const network of await runtime.networks()) await remove(network.name, () => runtime.removeNetwork(network));
      }
      for (const v of await runtime.volumes()) {
        if (!before.volumes.has(v)) await remove(v, () => runtime.removeVolume(v));
      }
      // Settled only if nothing new shows up a moment later either.
      await new Promise((r) => setTimeout(r, 300));
      const late = await newSince();
      if (blocked.length === 0 && late.length === 0 && (await runtime.volumes()).every((v) => before.volumes.has(v))) return;
      if (Date.now() > deadline) throw new Error(`still in use after 20 s: ${[...blocked, ...late.map((c) => c.name)].join(', ')}`);
      step.update(`waiting for the engine to settle (${[...blocked, ...late.map((c) => c.name)].join(', ')})`);
    }
  });
  if (kept.size > 0) {
    reporter.warn(`kept ${[...kept].join(', ')}: compose recreated them for the changed spec, and the lab ran before this run — \`etcd-lab status\` and \`etcd-lab logs\` show why they are not ready`);
  }
  return [...removed];
}

export async function up(opts: UpOptions, reporter: Reporter): Promise<UpResult> {
  return withLab(opts, { lock: 'up', warn: true }, reporter, (runtime) => upOwnedLab(runtime, opts, reporter));
}

/** What Docker holds for the lab right now, for the line a second Ctrl-C prints. */
export async function labLeftovers(runtime: LabRuntime): Promise<string[]> {
  const [containers, networks, volumes] = await Promise.all([runtime.containers(), runtime.networks(), runtime.volumes()]);
  return [...containers.map((c) => `container ${c.name}`), ...networks.map((n) => `network ${n.name}`), ...volumes.map((v) => `volume ${v}`)];
}

/** What up's steps find and make, read by the steps after them and by their undo. */
interface UpContext {
  runtime: LabRuntime;
  reporter: Reporter;
  timeoutMs: number;
  /** The lab before this run: what the rollback keeps. */
  before?: Before & { running: ContainerInfo[] };
  /** Already up with the same files and images: a status report, nothing changed. */
  alreadyUp?: boolean;
  images?: ImageChoice;
  /** One deadline from `docker compose up` on: compose may use all of it, the waits get what it leaves. */
  deadline?: number;
  /** HAProxy ran before and its haproxy.cfg changed: compose does not recreate it for that. */
  reloadHaproxy?: boolean;
}

const changing = (ctx: UpContext) => !ctx.alreadyUp;

/** `etcd-lab up`, in order. Nothing changes before preflight passes; compose's undo is the rollback. */
export const UP_STEPS: Step<UpContext>[] = [
  { title: 'preflight', run: preflight },
  {
    title: 'images',
    reportsItself: true, // present, else pulled, else built here: each with its own line
    when: changing,
    run: async (ctx) => {
      const { lab } = ctx.runtime;
      const images = (ctx.images = await ctx.runtime.ensureImages(ctx.reporter));
      // The rest of up works on the images chosen (a local stand-in when the spec's cannot be pulled).
      ctx.runtime = ctx.runtime.on({ ...lab, local: { ...lab.local, etcdImage: images.etcd, haproxyImage: images.haproxy } });
    },
  },
  {
    title: (ctx) => `generate ${relative(process.cwd(), ctx.runtime.lab.outDir) || '.'}/`,
    when: changing,
    run: async (ctx) => {
      await warnIfEnvCommittable(ctx.runtime.lab, ctx.reporter);
      await writeLabFiles(ctx.runtime.lab);
    },
  },
  {
    title: (ctx) => `docker compose up (${ctx.runtime.lab.spec.members} members + HAProxy)`,
    when: changing,
    run: composeUp,
    undo: (ctx) => rollBack(ctx.runtime, ctx.before!, ctx.reporter),
  },
  {
    title: 'reload HAProxy on the new haproxy.cfg (listening sockets kept)',
    when: (ctx) => changing(ctx) && Boolean(ctx.reloadHaproxy),
    run: async (ctx, step) => void (await ctx.runtime.reloadHaproxy(ctx.deadline!, step)),
  },
  { title: 'lab ready', reportsItself: true, when: changing, run: (ctx) => waitUntilReady(ctx.runtime, ctx.deadline!, ctx.reporter) },
];

async function preflight(ctx: UpContext, step: StepHandle): Promise<void> {
  const { runtime } = ctx;
  step.update('docker compose v2');
  if (!(await runtime.composeVersion())) {
    throw new UserError('docker compose v2 is not available (`docker compose version` fails)', {
      hint: 'install the Docker Compose plugin: Docker Desktop has it; on Debian run `etcd-lab setup-host`; elsewhere see https://docs.docker.com/compose/install/',
      exitCode: ExitCode.refused,
    });
  }
  step.update('existing lab');
  const [containers, volumes, network] = await Promise.all([runtime.containers(), runtime.volumes(), runtime.network()]);
  checkMembership(runtime, await runtime.dataVolumes());
  step.update('subnet');
  await checkNetwork(runtime);
  step.update('host ports');
  const haproxy = containers.find((c) => c.labels[LABEL.role] === 'haproxy');
  const held = new Set<number>(
    haproxy?.state === 'running' ? [haproxy.hostPorts[HAPROXY_CLIENT_PORT], haproxy.hostPorts[HAPROXY_STATS_PORT]].filter((p): p is number => p !== undefined) : [],
  );
  await checkPorts(runtime, held);
  ctx.before = {
    containers: new Set(containers.map((c) => c.id)),
    names: new Set(containers.map((c) => c.name)),
    volumes: new Set(volumes),
    network: network !== undefined,
    running: containers,
  };
  ctx.alreadyUp = await isAlreadyUp(runtime, containers);
  if (ctx.alreadyUp) {
    // Still re-issue what is close to expiry: etcd reads its certificate files anew for each new
    // connection. A new CA is only trusted after a restart.
    const pki = await ensureLabPki(runtime.lab);
    if (pki?.issued.includes(CA)) {
      ctx.reporter.warn('the lab CA was replaced (it was close to expiry): restart the lab so the members trust it — `etcd-lab down && etcd-lab up`');
    }
  }
}

async function composeUp(ctx: UpContext, step: StepHandle): Promise<void> {
  const { runtime } = ctx;
  const deadline = (ctx.deadline = Date.now() + ctx.timeoutMs);
  await runtime.compose(['up', '--detach', '--no-color', '--quiet-pull'], (line) => step.update(line), { timeoutMs: deadline - Date.now() }).catch((error: unknown) => {
    if (error instanceof UserError) throw error; // Ctrl-C, or past --timeout: it says so itself
    throw new UserError(`docker compose up failed: ${lastWords(error)}`, {
      hint: `the generated stack is in ${runtime.lab.outDir}; \`docker compose -f ${runtime.composeFile} config\` shows what was asked`,
      exitCode: ExitCode.failedPartWay,
      cause: error,
    });
  });
  const haproxy = await runtime.haproxyContainer();
  ctx.reloadHaproxy = Boolean(haproxy && ctx.before!.containers.has(haproxy.id) && (await runtime.haproxyConfigHash()) !== (await runtime.haproxyFileHash()));
}

async function upOwnedLab(runtime: LabRuntime, opts: UpOptions, reporter: Reporter): Promise<UpResult> {
  const started = Date.now();
  const { lab } = runtime;
  const ctx = await runSteps<UpContext>(UP_STEPS, { runtime, reporter, timeoutMs: opts.timeoutMs ?? 60_000 }, reporter, {
    command: 'up',
    retain: opts.retain,
    retainedHint: '`etcd-lab down --volumes` removes the lab',
    leftovers: () => labLeftovers(runtime),
  });
  return {
    name: lab.spec.name,
    alreadyUp: Boolean(ctx.alreadyUp),
    elapsedMs: Date.now() - started,
    clientEndpoint: runtime.clientEndpoint,
    statsUrl: runtime.statsUrl,
    credentialsFile: join(lab.outDir, '.env'),
    images: ctx.images ?? { etcd: lab.local.etcdImage, haproxy: lab.local.haproxyImage },
    status: await collectStatus(runtime),
  };
}
