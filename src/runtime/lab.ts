// A lab as it exists: its addresses (lab-addresses.ts), its objects found by label
// (lab-objects.ts), and here the cluster's view — which member leads, each one's status, one view
// of the members joined to their containers, and `ask`: one call to a member that can answer.
import type { LoadedLab } from '../config/load.js';
import { UserError } from '../errors.js';
import { LABEL, quorumOf, type MemberTopology } from '../config/topology.js';
import type { ContainerInfo } from '../engine/engine.js';
import { describeFetchError, isTransient, memberHealth, memberStatus, neverSent, type Endpoint, type Health, type MemberStatus } from '../protocol/etcd-http.js';
import { electedLeader, type ElectedLeader, type MemberView } from './leader.js';
import { sleep, throwIfInterrupted } from '../interrupt.js';
import type { StepHandle } from '../progress.js';
import { ExitCode } from '../exit-codes.js';
import { LabObjects, type LabMemberContainer } from './lab-objects.js';

export type { LabMemberContainer } from './lab-objects.js';

/** A member of the spec joined to what exists of it (LabRuntime.members). */
export interface LabMember {
  name: string;
  topology: MemberTopology;
  container?: LabMemberContainer;
  /** Its client API on this machine, while its container runs and publishes it. */
  endpoint?: Endpoint;
}

export class LabRuntime extends LabObjects {
  /** The same engine on another spec of this lab (scale's lab at each size). */
  on(lab: LoadedLab): LabRuntime {
    return new LabRuntime(lab, this.engine);
  }

  /**
   * Stops and removes containers of the lab: HAProxy first, so no client connection holds a member's
   * graceful shutdown open. Then the followers, and the leader last: a leader stopping beside stopping
   * followers hands its leadership to one of them and then waits seconds for a leader that never comes.
   */
  async removeContainers(containers: ContainerInfo[], onRemoved: (name: string) => void = () => {}, graceSeconds = 10): Promise<void> {
    const remove = async (c: ContainerInfo) => {
      await this.engine.containers.remove(c.id, graceSeconds);
      onRemoved(c.name);
    };
    const role = (c: ContainerInfo) => c.labels[LABEL.role];
    // Best effort: without an answer (or without the TLS client files) the order is only slower.
    const leader = await this.leader().catch(() => undefined);
    const isLeader = (c: ContainerInfo) => role(c) === 'etcd' && c.labels[LABEL.member] === leader;
    await Promise.all(containers.filter((c) => role(c) !== 'etcd').map(remove));
    await Promise.all(containers.filter((c) => role(c) === 'etcd' && !isLeader(c)).map(remove));
    await Promise.all(containers.filter(isLeader).map(remove));
  }

  /** Each member's raft status over its own API (undefined where it does not answer in time, with why). */
  async statuses(members?: LabMemberContainer[], timeoutMs = 500): Promise<MemberAnswer[]> {
    const list = members ?? (await this.memberContainers());
    return Promise.all(
      list.map(async (container): Promise<MemberAnswer> => {
        let endpoint: Endpoint | undefined;
        try {
          endpoint = this.memberEndpoint(container);
        } catch {
          return { container, error: 'no client certificate in generated/pki' };
        }
        if (!endpoint) return { container, error: `container ${container.state}` };
        try {
          return { container, endpoint, status: await memberStatus(endpoint, timeoutMs) };
        } catch (error) {
          return { container, endpoint, error: describeFetchError(error) };
        }
      }),
    );
  }

  /** The leader by the one rule (see leader.ts), and every member's answer it was read from. */
  async leaderView(timeoutMs = 1000, clusterSize = this.topology.members.length): Promise<LeaderView> {
    const answers = await this.statuses(undefined, timeoutMs);
    const elected = electedLeader(memberViews(answers), clusterSize);
    const container = elected?.member !== undefined ? answers.find((a) => a.container.member === elected.member)?.container : undefined;
    return { elected, answers, ...(container ? { container } : {}) };
  }

  /** The member a quorum follows now, if it answers (a leader just killed does not). */
  async leader(timeoutMs = 1000): Promise<string | undefined> {
    return (await this.leaderView(timeoutMs)).container?.member;
  }

  /** The leader's container (to reach it, as move-leader must). */
  async leaderContainer(timeoutMs = 1000): Promise<LabMemberContainer | undefined> {
    return (await this.leaderView(timeoutMs)).container;
  }

  /**
   * Waits, within `deadline`, for a leader that a quorum follows and that answers: right after a
   * leader was killed, paused or cut off, its followers name it until the election timeout, then
   * elect another. Refuses with each member's answer when none comes (quorum lost).
   */
  async awaitLeader(deadline: number, step?: StepHandle, clusterSize?: number): Promise<LeaderView & { container: LabMemberContainer; elected: ElectedLeader }> {
    for (;;) {
      throwIfInterrupted();
      const view = await this.leaderView(1000, clusterSize);
      if (view.container && view.elected) return view as LeaderView & { container: LabMemberContainer; elected: ElectedLeader };
      step?.update(`waiting for a leader: ${describeAnswers(view.answers)}`);
      // Fewer members running than a quorum: no election can end, so no waiting for one.
      if (Date.now() >= deadline || this.running(view) < quorumOf(clusterSize ?? this.topology.members.length)) throw this.noLeader(view);
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
  }

  /** Members whose containers run on the lab network: the most that could elect a leader. */
  private running(view: LeaderView): number {
    return view.answers.filter((a) => a.container.state === 'running' && !this.isPartitioned(a.container)).length;
  }

  /** How long a command waits for an election before calling quorum lost: several election timeouts. */
  get electionWaitMs(): number {
    return Math.max(10_000, 10 * this.lab.spec.etcd.electionTimeoutMs);
  }

  private noLeader(view: LeaderView): UserError {
    const size = this.topology.members.length;
    return new UserError(`lab "${this.name}" has no leader that a quorum (${quorumOf(size)} of ${size}) follows: ${describeAnswers(view.answers)}`, {
      hint: 'with quorum lost nothing can be written or read consistently: bring members back (`etcd-lab start`, `unpause`, `heal`; `etcd-lab status` shows which), or restore from a snapshot (`etcd-lab snapshot restore FILE`)',
      exitCode: ExitCode.refused,
    });
  }

  /**
   * Asks the cluster something through a member that answers and follows the leader (never blindly
   * through HAProxy, which may still send a connection to a member that just died). A call that
   * fails for the moment (see isTransient) is asked again, of the next member, until `deadline`; a
   * call that is not idempotent is asked again only when it never reached a member. What it cannot
   * get says which member did not answer and why.
   */
  async ask<T>(what: string, call: (endpoint: Endpoint, member: string) => Promise<T>, opts: AskOptions): Promise<T> {
    const deadline = opts.deadline ?? Date.now() + this.electionWaitMs;
    const tried: string[] = [];
    let round = 0;
    for (;;) {
      throwIfInterrupted();
      const view = await this.leaderView(1000, opts.clusterSize);
      const candidates = view.answers.filter(
        (a) =>
          a.status &&
          a.endpoint &&
          view.elected &&
          a.status.leader === view.elected.id &&
          a.status.raftTerm === view.elected.term &&
          !(opts.exclude ?? []).includes(a.container.member) &&
          !this.isPartitioned(a.container),
      );
      const isLeader = (a: MemberAnswer) => a.status!.memberId === a.status!.leader;
      const ordered = opts.prefer === 'leader' ? [...candidates.filter(isLeader), ...candidates.filter((a) => !isLeader(a))] : opts.prefer === 'follower' ? [...candidates.filter((a) => !isLeader(a)), ...candidates.filter(isLeader)] : candidates;
      // Not always the same member first: one that answers slowly should not take every round.
      const order = opts.prefer ? ordered : ordered.map((_, i) => ordered[(i + round) % ordered.length]!);
      round++;
      if (order.length === 0) tried.push(`no leader yet (${describeAnswers(view.answers)})`);
      // Fewer members running than a quorum: no leader can come, so no waiting for one.
      if (order.length === 0 && this.running(view) < quorumOf(opts.clusterSize ?? this.topology.members.length)) throw this.noLeader(view);
      for (const a of order) {
        try {
          return await call(a.endpoint!, a.container.member);
        } catch (error) {
          if (!isTransient(error)) throw error;
          tried.push(`${a.container.member}: ${etcdReason(error)}`);
          if (!opts.idempotent && !neverSent(error)) {
            throw new UserError(`${what}: ${a.container.member} did not answer (${etcdReason(error)}), so whether it was done is unknown`, {
              hint: '`etcd-lab status` and `etcd-lab member list` show where the lab stands; run the command again once it has a leader',
              exitCode: ExitCode.failedPartWay,
              cause: error,
            });
          }
        }
        if (Date.now() >= deadline) break;
      }
      opts.step?.update(`${what}: ${tried.at(-1)}; asking again`);
      if (Date.now() >= deadline) {
        throw new UserError(`${what}: no member of lab "${this.name}" could answer in time (${[...new Set(tried)].slice(-4).join('; ')})`, {
          hint: '`etcd-lab status` shows which members serve; bring the others back (`etcd-lab start`, `unpause`, `heal`) and run the command again',
          exitCode: ExitCode.refused,
        });
      }
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
  }

  /**
   * The one view of the members: every member of the spec, in order, joined to its container (when
   * there is one) and, while that runs and publishes its client port, its endpoint on this machine.
   * `names` narrows it to those members.
   */
  async members(names?: string[]): Promise<LabMember[]> {
    const containers = await this.memberContainers();
    return this.topology.members
      .filter((m) => !names || names.includes(m.name))
      .map((topology) => {
        const container = containers.find((c) => c.member === topology.name);
        return { name: topology.name, topology, container, endpoint: container && this.memberEndpoint(container) };
      });
  }

  /** One member of the spec in that view; undefined for a name the spec does not have. */
  async member(name: string): Promise<LabMember | undefined> {
    return (await this.members([name]))[0];
  }

  /** The members with their health as /health says it: a member with no endpoint is not healthy, and says why. */
  async memberHealth(names?: string[], timeoutMs = 1000, opts: { excludeNoSpace?: boolean } = {}): Promise<(LabMember & { health: Health })[]> {
    return Promise.all(
      (await this.members(names)).map(async (m) => ({
        ...m,
        health: m.endpoint ? await memberHealth(m.endpoint, timeoutMs, opts) : { healthy: false, reason: m.container ? `container ${m.container.state}` : 'no container' },
      })),
    );
  }

  /** The spec's members that are not healthy now: no container, not running, or /health not 200. */
  async unhealthyMembers(timeoutMs = 1000): Promise<string[]> {
    return (await this.memberHealth(undefined, timeoutMs)).filter((m) => !m.health.healthy).map((m) => m.name);
  }

  /**
   * Each running member's client API on this machine, by member name. Asked again after a fault:
   * a member restarted, or cut off, is published on another host port.
   */
  async memberEndpoints(): Promise<Map<string, Endpoint>> {
    const endpoints = new Map<string, Endpoint>();
    for (const c of await this.memberContainers()) {
      const e = this.memberEndpoint(c);
      if (e) endpoints.set(c.member, e);
    }
    return endpoints;
  }

}


/** What the leader rule reads of each answer (see leader.ts). */
export function memberViews(answers: MemberAnswer[]): MemberView[] {
  return answers.map((a) => ({ member: a.container.member, memberId: a.status?.memberId, leaderId: a.status?.leader, raftTerm: a.status?.raftTerm }));
}

/** One member's answer to a status call: its status, or why there is none. */
export interface MemberAnswer {
  container: LabMemberContainer;
  endpoint?: Endpoint;
  status?: MemberStatus;
  error?: string;
}

export interface LeaderView {
  elected?: ElectedLeader;
  /** The leader's container, when the leader itself answered. */
  container?: LabMemberContainer;
  answers: MemberAnswer[];
}

export interface AskOptions {
  /** Safe to send twice (a read, or a change whose result is checked first): retried within the deadline. */
  idempotent: boolean;
  /** Default: now + the election wait. */
  deadline?: number;
  /** Members not to ask (one being replaced or leaving). */
  exclude?: string[];
  /** Ask the leader first (move-leader), or a follower first (to spare the leader). */
  prefer?: 'leader' | 'follower';
  step?: StepHandle;
  /** Voting members etcd has now, when that is not the spec's count (in the middle of `scale`). */
  clusterSize?: number;
}

/** "etcd1: no answer in time, etcd2: follows etcd3 (term 5), etcd3: leader (term 5)". */
export function describeAnswers(answers: MemberAnswer[]): string {
  const names = new Map(answers.filter((a) => a.status).map((a) => [a.status!.memberId, a.container.member]));
  return answers
    .map((a) => {
      if (!a.status) return `${a.container.member}: ${a.error ?? 'no answer'}`;
      const { leader, memberId, raftTerm } = a.status;
      if (leader === '0') return `${a.container.member}: no leader (term ${raftTerm})`;
      if (leader === memberId) return `${a.container.member}: leader (term ${raftTerm})`;
      return `${a.container.member}: follows ${names.get(leader) ?? BigInt(leader).toString(16)} (term ${raftTerm})`;
    })
    .join(', ');
}

/** etcd's own words when it refused ("…HTTP 503 {"message":"etcdserver: leader changed"}" → "etcdserver: leader changed"). */
export function etcdReason(error: unknown): string {
  const message = (error as Error).message ?? '';
  const said = /"message":\s*"([^"]+)"/.exec(message)?.[1];
  return said ?? describeFetchError(error);
}
