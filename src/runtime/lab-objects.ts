// A lab's objects in Docker, found by label: its containers (members, HAProxy, the API server),
// network and volumes, whose checkout made them; and the two actions every operation shares, a
// compose run that keeps each member as it was made, and an HAProxy reload.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { readFile } from 'node:fs/promises';
import { HAPROXY_FILE } from '../render/index.js';
import { joinValuesOf, memberImageVar } from '../render/etcd-flags.js';
import { configHashOf } from '../render/haproxy.js';
import { fetchStats } from '../protocol/haproxy-stats.js';
import { waitUntil } from './wait.js';
import { LABEL } from '../config/topology.js';
import type { ContainerInfo } from '../engine/engine.js';
import type { StepHandle } from '../progress.js';
import { ExitCode } from '../exit-codes.js';
import { LabAddresses } from './lab-addresses.js';

export interface LabMemberContainer extends ContainerInfo {
  member: string;
}

export class LabObjects extends LabAddresses {
  async containers(): Promise<ContainerInfo[]> {
    return this.engine.containers.list([this.labLabel]);
  }

  /** Member containers in member order (etcd1, etcd2, …). */
  async memberContainers(): Promise<LabMemberContainer[]> {
    const all = await this.engine.containers.list([this.labLabel, `${LABEL.role}=etcd`]);
    return all
      .map((c) => ({ ...c, member: c.labels[LABEL.member] ?? '' }))
      .sort((a, b) => a.member.localeCompare(b.member, 'en', { numeric: true }));
  }

  /**
   * `docker compose` on the lab's file. A member that has a container keeps the bootstrap values it
   * was created with (`--initial-cluster` as on the day it bootstrapped or joined): etcd ignores them
   * once a member has data, and compose, which would otherwise see a changed definition after a
   * `scale` or `member replace`, leaves the member running instead of recreating it.
   */
  async compose(args: string[], onLine?: (line: string) => void, opts: { cleanup?: boolean; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    const kept = keptBootstrapEnv(await this.memberContainers());
    const pinned = Object.fromEntries([...this.pinnedImages].map(([member, image]) => [memberImageVar(member), image]));
    return this.engine.compose.run(this.name, this.composeFile, args, onLine, { ...opts, env: { ...kept, ...pinned, ...opts.env } });
  }

  /** Members moved to another image by this process (check's upgrade fault): every later compose call keeps them there. */
  private readonly pinnedImages = new Map<string, string>();

  pinMemberImage(member: string, image: string): void {
    this.pinnedImages.set(member, image);
  }

  /** The hash of the haproxy.cfg HAProxy runs, as its stats page says; undefined while it does not answer. */
  async haproxyConfigHash(timeoutMs = 1000): Promise<string | undefined> {
    return (await fetchStats(this.statsUrl, this.statsCredentials, timeoutMs).catch(() => undefined))?.configHash;
  }

  /** The hash of generated/haproxy/haproxy.cfg, or undefined when there is none. */
  async haproxyFileHash(): Promise<string | undefined> {
    const cfg = await readFile(join(this.lab.outDir, HAPROXY_FILE), 'utf8').catch(() => undefined);
    return cfg === undefined ? undefined : configHashOf(cfg);
  }

  /**
   * Puts a running HAProxy on generated/haproxy/haproxy.cfg when it runs another: SIGUSR2 makes its
   * master process start new workers on the file, which take over the listening sockets (no client
   * is refused) while the old ones finish their connections (at most `hard-stop-after`). Waits until
   * the stats page says the new file is in use. False when nothing needed doing.
   */
  async reloadHaproxy(deadline: number, step?: StepHandle): Promise<boolean> {
    const container = await this.haproxyContainer();
    const wanted = await this.haproxyFileHash();
    if (container?.state !== 'running' || wanted === undefined) return false;
    let signalled = false;
    await waitUntil(
      'HAProxy to run the new haproxy.cfg',
      deadline,
      async () => {
        const running = await this.haproxyConfigHash(500);
        if (running === wanted) return { done: true, detail: 'reloaded' };
        // Signalled once the stats page answers: a HAProxy still starting reads the file itself.
        if (running !== undefined && !signalled) {
          await this.engine.containers.kill(container.id, 'SIGUSR2');
          signalled = true;
        }
        return { done: false, detail: running === undefined ? 'stats page not answering yet' : 'reloading' };
      },
      step,
      { intervalMs: 100, hint: `\`etcd-lab logs haproxy\` says why HAProxy kept its old configuration` },
    );
    return signalled;
  }

  async haproxyContainer(): Promise<ContainerInfo | undefined> {
    return (await this.engine.containers.list([this.labLabel, `${LABEL.role}=haproxy`]))[0];
  }

  /** The container of `etcd-lab apiserver` (one per lab: its name is the lab's), running or not. */
  async apiServerContainer(): Promise<ContainerInfo | undefined> {
    return (await this.engine.containers.list([this.labLabel, `${LABEL.role}=apiserver`]))[0];
  }

  async volumes(): Promise<string[]> {
    return (await this.engine.volumes.list([this.labLabel])).map((v) => v.name).sort();
  }

  /** The members' data volumes (not the copies a restore keeps meanwhile). */
  async dataVolumes(): Promise<string[]> {
    return (await this.engine.volumes.list([this.labLabel, `${LABEL.role}=data`])).map((v) => v.name).sort();
  }

  /** The lab's own network (fixed subnet), not the ones `partition` makes. */
  async network() {
    return (await this.networks()).find((n) => n.name === this.topology.network);
  }

  /** Every network carrying the lab's label: its own and any partition networks. */
  async networks() {
    return this.engine.networks.list([this.labLabel]);
  }

  /**
   * The spec files, other than this checkout's, that own what Docker holds under this lab's name.
   * Objects from before owner labels are judged by the compose file compose recorded on containers.
   */
  async foreignOwners(): Promise<string[]> {
    const [containers, networks, volumes] = await Promise.all([
      this.containers(),
      this.networks(),
      this.engine.volumes.list([this.labLabel]),
    ]);
    const owners = new Set<string>();
    for (const { labels } of [...containers, ...networks, ...volumes]) {
      const owner = labels[LABEL.owner];
      const composeFile = labels['com.docker.compose.project.config_files'];
      if (owner !== undefined) {
        if (owner !== this.lab.owner) owners.add(owner);
      } else if (composeFile !== undefined && composeFile !== this.composeFile) {
        owners.add(join(dirname(dirname(composeFile)), 'etcd-lab.yaml'));
      }
    }
    return [...owners].sort();
  }

  /**
   * Refuses to act on a lab another checkout made (same name, other spec): its HAProxy reads that
   * checkout's files, its credentials are that checkout's, and `down` here would end its work.
   */
  async assertOwned(): Promise<void> {
    const [other] = await this.foreignOwners();
    if (other === undefined) return;
    const gone = !existsSync(dirname(other));
    throw new UserError(`lab "${this.name}" belongs to another checkout: ${other}${gone ? ' (that directory no longer exists)' : ''}`, {
      hint:
        `this checkout's spec is ${this.lab.owner}. Either run etcd-lab in ${dirname(other)}, or give this lab another name ` +
        `(name: in etcd-lab.yaml, or --name ${this.name}-2)` +
        (gone ? `; to remove the orphaned lab from here: \`etcd-lab down --take-over\` (data volumes kept unless --volumes)` : ''),
      exitCode: ExitCode.refused,
    });
  }

  /** A member is cut off when it is not on the lab network (see `partition`). */
  isPartitioned(container: ContainerInfo): boolean {
    return !container.networks.includes(this.topology.network);
  }
}

/** For each member with a container, the join variables that reproduce its bootstrap flags (see LabRuntime.compose). */
export function keptBootstrapEnv(members: LabMemberContainer[]): Record<string, string> {
  return Object.assign({}, ...members.map((c) => joinValuesOf(c.member, c.command ?? '')));
}
