// The membership changes scale and member replace share, each the way the etcd operations guide
// does it: a member removed or added only when the cluster allows it, a new member started as a
// learner and promoted once it has caught up.
import type { Reporter, StepHandle } from '../progress.js';
import type { MemberTopology } from '../config/topology.js';
import { joinVars } from '../render/etcd-flags.js';
import { timeLeft } from '../engine/deadlines.js';
import { addMember, listMembers, promoteMember, removeMember, type ClusterMember } from '../protocol/etcd-http.js';
import type { LabRuntime } from '../runtime/lab.js';
import { waitUntil } from '../runtime/wait.js';

/** What etcd said in a refused call ("…HTTP 503 {"code":14,"message":"etcdserver: …"}"), for a progress line. */
const etcdSays = (message: string) => message.replace(/^.*"message":\s*"([^"]+)".*$/s, '$1').slice(0, 120);

/**
 * etcd refuses a membership change until the member asked has been connected to a quorum for a few
 * seconds ("unhealthy cluster"), as it is just after another member was added, removed or restarted:
 * the change is asked again until then.
 */
export async function whenClusterAllows<T>(what: string, deadline: number, step: StepHandle | undefined, change: () => Promise<T>): Promise<T> {
  let result: T | undefined;
  let done = false;
  await waitUntil(
    what,
    deadline,
    async () => {
      try {
        result = await change();
        done = true;
        return { done, detail: 'done' };
      } catch (error) {
        const message = (error as Error).message;
        if (!/unhealthy cluster|not enough started members|server stopped|TimeoutError|deadline|socket hang up|ECONNRESET|ECONNREFUSED/i.test(`${(error as Error).name} ${(error as NodeJS.ErrnoException).code} ${message}`)) throw error;
        return { done: false, detail: `etcd: ${etcdSays(message)}` };
      }
    },
    step,
    { intervalMs: 500 },
  );
  return result as T;
}

/**
 * `member remove`, asked of a member that stays: one asked through HAProxy may be the member
 * leaving, which stops before it answers ("server stopped"). Done once the member is gone from the
 * list, whichever attempt removed it.
 */
export async function removeWhenAllowed(runtime: LabRuntime, id: string, leaving: string, deadline: number, step: StepHandle | undefined): Promise<void> {
  await whenClusterAllows(`etcd to remove ${leaving}`, deadline, step, () =>
    // Idempotent as asked: removed only while still listed.
    runtime.ask(
      `member remove ${leaving}`,
      async (endpoint) => {
        if (!(await listMembers(endpoint, 3000)).some((m) => m.id === id)) return;
        await removeMember(endpoint, id).catch((error: unknown) => {
          // Removed by an attempt that did not answer in time, between the list above and this remove.
          if (!/member not found/i.test((error as Error).message)) throw error;
        });
      },
      { idempotent: true, exclude: [leaving], deadline, step },
    ),
  );
}

/**
 * A compose run stopped half-way can leave a member's old container stopped and no new one: each
 * run gets at least this long, whatever is left of the command's deadline.
 */
const COMPOSE_MIN_MS = 60_000;

/** `member add` as a learner: it does not count towards quorum until promoted. */
export async function addWhenHealthy(runtime: LabRuntime, member: MemberTopology, deadline: number, reporter: Reporter): Promise<{ added: ClusterMember; members: ClusterMember[] }> {
  return reporter.step(`member add ${member.name} ${member.peerUrl} (learner)`, (step) =>
    whenClusterAllows(`etcd to accept ${member.name} as a new member`, deadline, step, () =>
      runtime.ask(
        `member add ${member.name}`,
        async (endpoint) => {
          // An earlier attempt that timed out may have gone through: the learner is there, not started.
          const members = await listMembers(endpoint, 3000);
          const there = members.find((m) => m.peerUrls.includes(member.peerUrl) && m.name === '');
          if (there) return { added: there, members };
          return addMember(endpoint, member.peerUrl, { learner: true }).catch(async (error: unknown) => {
            // Added by an attempt that did not answer in time, between the list above and this add.
            if (!/Peer URLs already exists/i.test((error as Error).message)) throw error;
            const now = await listMembers(endpoint, 3000);
            const added = now.find((m) => m.peerUrls.includes(member.peerUrl) && m.name === '');
            if (!added) throw error;
            return { added, members: now };
          });
        },
        { idempotent: true, exclude: [member.name], deadline, step },
      ),
    ),
  );
}

/** Starts a member that joins a running cluster: `existing` state and the membership as it is now. */
export async function startJoining(runtime: LabRuntime, member: MemberTopology, members: ClusterMember[], reporter: Reporter, deadline: number): Promise<void> {
  const initialCluster = members
    .map((m) => `${m.name || member.name}=${m.peerUrls[0]}`)
    .sort()
    .join(',');
  const vars = joinVars(member.name);
  await reporter.step(`start ${member.name} (initial-cluster-state=existing)`, (step) =>
    runtime.compose(['up', '--detach', '--no-color', '--no-deps', member.name], (line) => step.update(line), {
      env: { [vars.state]: 'existing', [vars.initialCluster]: initialCluster },
      timeoutMs: Math.max(timeLeft(deadline), COMPOSE_MIN_MS),
    }),
  );
}

/** etcd promotes a learner only once it is in sync with the leader: try until it agrees. */
export async function promoteWhenCaughtUp(runtime: LabRuntime, member: MemberTopology, id: string, deadline: number, reporter: Reporter): Promise<void> {
  await reporter.step(`promote ${member.name} once it has caught up`, (step) =>
    waitUntil(
      `${member.name} to catch up with the leader`,
      deadline,
      async () => {
        try {
          await runtime.ask(
            `promote ${member.name}`,
            async (endpoint) => {
              // Promoted by an earlier try that did not answer in time: done.
              if ((await listMembers(endpoint, 3000)).find((m) => m.id === id)?.isLearner === false) return;
              await promoteMember(endpoint, id);
            },
            { idempotent: true, exclude: [member.name], deadline: Math.min(deadline, Date.now() + 5000), step },
          );
          return { done: true, detail: 'promoted to voter' };
        } catch (error) {
          return { done: false, detail: etcdSays((error as Error).message) };
        }
      },
      step,
      { intervalMs: 300, hint: `\`etcd-lab logs ${member.name}\` shows why` },
    ),
  );
}
