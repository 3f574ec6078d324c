// `etcd-lab up`: an ordered list of steps, each with a progress line. Whatever this run created is
// removed again when a later step fails, unless --retain.
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { formatProblem, UserError } from '../errors.js';
import type { Reporter } from '../progress.js';
import { COMPOSE_FILE, ENV_FILE, HAPROXY_FILE, renderLab } from '../render/index.js';
import { DockerEngine, type ContainerInfo } from '../runtime/docker.js';
import { ensureLabImages, LOCAL_IMAGES, type ImageChoice } from '../runtime/images.js';
import { LabRuntime } from '../runtime/lab.js';
import { checkMembership, checkNetwork, checkPorts } from '../runtime/preflight.js';
import { collectStatus, type LabStatus } from '../runtime/status.js';
import { waitUntilReady } from '../runtime/readiness.js';
import { loadLab, type LoadOptions } from '../config/load.js';
import { HAPROXY_CLIENT_PORT, HAPROXY_STATS_PORT, LABEL } from '../config/topology.js';
import { writeLabFiles } from './generate.js';

export interface UpOptions extends LoadOptions {
  /** Keep what this run created when it fails (for debugging). */
  retain?: boolean;
  /** Deadline for the lab to become ready, from `docker compose up` on. */
  timeoutMs?: number;
  engine?: DockerEngine;
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
  const { spec, local, outDir } = runtime.lab;
  if (running.length !== spec.members + 1 || running.some((c) => c.state !== 'running')) return false;
  const files = renderLab({ spec, local, endpointMode: 'network' });
  for (const name of [COMPOSE_FILE, HAPROXY_FILE, ENV_FILE]) {
    const existing = await readFile(join(outDir, name), 'utf8').catch(() => undefined);
    const same = name === ENV_FILE ? withoutImages(existing) === withoutImages(files.get(name)) : existing === files.get(name);
    if (!same) return false;
  }
  for (const c of running) {
    const kind = c.labels[LABEL.role] === 'haproxy' ? 'haproxy' : 'etcd';
    const wanted = kind === 'etcd' ? local.etcdImage : local.haproxyImage;
    if (c.image === wanted) continue;
    const fallbackStands = c.image === LOCAL_IMAGES[kind] && !(await runtime.engine.imageExists(wanted));
    if (!fallbackStands) return false;
  }
  return true;
}

/** Removes what did not exist before this run: containers, then the network, then volumes. */
async function rollBack(runtime: LabRuntime, before: Before, reporter: Reporter): Promise<string[]> {
  const removed: string[] = [];
  await reporter.step('roll back what this run created', async (step) => {
    const created = (await runtime.containers()).filter((c) => !before.containers.has(c.id));
    step.update(`removing ${created.map((c) => c.name).join(', ')}`);
    await Promise.all(created.map((c) => runtime.engine.removeContainer(c.id, 2)));
    removed.push(...created.map((c) => c.name));
    if (!before.network) {
      for (const network of await runtime.networks()) {
        await runtime.engine.removeNetwork(network.id);
        removed.push(network.name);
      }
    }
    for (const v of await runtime.volumes()) {
      if (before.volumes.has(v)) continue;
      await runtime.engine.removeVolume(v);
      removed.push(v);
    }
  });
  return removed;
}

export async function up(opts: UpOptions, reporter: Reporter): Promise<UpResult> {
  const started = Date.now();
  const lab = loadLab(opts);
  for (const w of lab.warnings) reporter.warn(formatProblem(w));
  const engine = opts.engine ?? new DockerEngine();
  const runtime = new LabRuntime(lab, engine);
  const { spec } = lab;
  const timeoutMs = opts.timeoutMs ?? 60_000;

  // 1. Preflight: nothing is changed until every check passes.
  const before = await reporter.step('preflight', async (step) => {
    step.update('Docker engine');
    await engine.ping();
    step.update('docker compose v2');
    if (!(await engine.composeVersion())) {
      throw new UserError('docker compose v2 is not available (`docker compose version` fails)', {
        hint: 'install the Docker Compose plugin: Docker Desktop has it; on Debian run scripts/setup-host.sh; elsewhere see https://docs.docker.com/compose/install/',
        exitCode: 3,
      });
    }
    step.update('existing lab');
    const [containers, volumes, network] = await Promise.all([runtime.containers(), runtime.volumes(), runtime.network()]);
    checkMembership(runtime, volumes);
    step.update('subnet');
    await checkNetwork(runtime);
    step.update('host ports');
    const haproxy = containers.find((c) => c.labels[LABEL.role] === 'haproxy');
    const held = new Set<number>(
      haproxy?.state === 'running' ? [haproxy.hostPorts[HAPROXY_CLIENT_PORT], haproxy.hostPorts[HAPROXY_STATS_PORT]].filter((p): p is number => p !== undefined) : [],
    );
    await checkPorts(runtime, held);
    return { containers: new Set(containers.map((c) => c.id)), volumes: new Set(volumes), network: network !== undefined, running: containers };
  });

  // 2. Already up with the same files and images? Then this is a status report, not a change.
  const result = async (alreadyUp: boolean, images: ImageChoice): Promise<UpResult> => ({
    name: spec.name,
    alreadyUp,
    elapsedMs: Date.now() - started,
    clientEndpoint: runtime.clientEndpoint,
    statsUrl: runtime.statsUrl,
    credentialsFile: join(lab.outDir, '.env'),
    images,
    status: await collectStatus(runtime),
  });
  if (await isAlreadyUp(runtime, before.running)) {
    return result(true, { etcd: lab.local.etcdImage, haproxy: lab.local.haproxyImage });
  }

  // 3. Images: present, else pulled, else built here.
  const images = await ensureLabImages(
    engine,
    { etcd: lab.local.etcdImage, haproxy: lab.local.haproxyImage },
    { etcd: spec.etcd.image, haproxy: spec.haproxy.image },
    reporter,
  );
  lab.local.etcdImage = images.etcd;
  lab.local.haproxyImage = images.haproxy;

  // 4. Files.
  await reporter.step(`generate ${relative(process.cwd(), lab.outDir) || '.'}/`, () => writeLabFiles(lab));

  // 5. Start, then wait until the lab is really ready; roll back on failure.
  try {
    await reporter.step(`docker compose up (${spec.members} members + HAProxy)`, async (step) => {
      await engine
        .compose(spec.name, runtime.composeFile, ['up', '--detach', '--no-color', '--quiet-pull'], (line) => step.update(line))
        .catch((error: Error & { stderr?: string }) => {
          const lines = (error.stderr ?? error.message).trim().split('\n');
          throw new UserError(`docker compose up failed: ${lines.at(-1)}`, {
            hint: `the generated stack is in ${lab.outDir}; \`docker compose -f ${runtime.composeFile} config\` shows what was asked`,
            exitCode: 4,
            cause: error,
          });
        });
    });
    await waitUntilReady(runtime, Date.now() + timeoutMs, reporter);
  } catch (error) {
    if (opts.retain) {
      reporter.warn('--retain: leaving the lab as it is for inspection (`etcd-lab down --volumes` removes it)');
    } else {
      try {
        await rollBack(runtime, before, reporter);
      } catch (rollbackError) {
        reporter.warn(`rollback failed: ${(rollbackError as Error).message}; remove leftovers with \`etcd-lab down --volumes\``);
      }
    }
    throw error;
  }

  return result(false, images);
}
