// What "ready" means for a lab, as explicit waits with one deadline: the expected members healthy,
// one leader they all agree on, HAProxy marking each of them UP, and a real write and read through
// HAProxy. `up` expects every member; the failure commands expect the members still alive.
import type { Reporter } from '../progress.js';
import { currentRevision, getKey, putKey } from '../protocol/etcd-http.js';
import { electedLeader } from './leader.js';
import { fetchStats } from '../protocol/haproxy-stats.js';
import { memberViews, type LabRuntime } from './lab.js';
import { waitUntil, type Probe } from './wait.js';

export interface ReadyOptions {
  /** Members that must be healthy and UP (default: all). */
  members?: string[];
  hint?: string;
  /** How the last check proves HAProxy serves: a write and read (default), or a read only, which leaves the revision as it is. */
  probe?: 'write' | 'read';
  /** Part of undoing after Ctrl-C: Ctrl-C does not end these waits. */
  cleanup?: boolean;
}

/** One wait of "ready": the step's title, what it waits for (for the timeout message), and its probe. */
interface ReadyWait {
  title: string;
  waitingFor: string;
  probe: () => Promise<Probe<unknown>>;
}

export async function waitUntilReady(runtime: LabRuntime, deadline: number, reporter: Reporter, opts: ReadyOptions = {}): Promise<void> {
  const expected = opts.members ?? runtime.topology.members.map((m) => m.name);
  const hint = opts.hint ?? 'see `etcd-lab status` and `etcd-lab logs`; --retain keeps the containers for that, --timeout gives it longer';
  for (const wait of readyWaits(runtime, expected, opts.probe ?? 'write')) {
    await reporter.step(wait.title, (step) => waitUntil(wait.waitingFor, deadline, wait.probe, step, { hint, cleanup: opts.cleanup }));
  }
}

/** The waits in order: each one's probe answers whether it holds yet, and what it sees meanwhile. */
function readyWaits(runtime: LabRuntime, expected: string[], probe: 'write' | 'read'): ReadyWait[] {
  const n = expected.length;
  const failed = (error: unknown) => ({ done: false, detail: (error as Error).message });
  return [
    {
      title: n === runtime.topology.members.length ? 'members healthy' : `${expected.join(', ')} healthy`,
      waitingFor: 'every member to be healthy',
      probe: async () => {
        const waiting = (await runtime.memberHealth(expected, 500)).filter((m) => !m.health.healthy).map((m) => `${m.name}: ${m.health.reason}`);
        return { done: waiting.length === 0, detail: `${n - waiting.length}/${n} healthy${waiting.length ? ` (${waiting.join(', ')})` : ''}` };
      },
    },
    {
      title: 'one leader',
      waitingFor: 'all members to agree on one leader',
      probe: async () => {
        const answers = await runtime.statuses((await runtime.memberContainers()).filter((c) => expected.includes(c.member)));
        const known = answers.filter((a) => a.status);
        // The one rule for the leader (leader.ts), and every expected member following it.
        const elected = electedLeader(memberViews(answers), runtime.topology.members.length);
        const agreed = elected?.member !== undefined && known.length === n && elected.followers.length === n;
        return {
          done: agreed,
          detail: agreed ? `leader ${elected.member}, term ${elected.term}` : `${known.length}/${n} answering, ${elected?.followers.length ?? 0} following ${elected?.member ?? 'a leader'}`,
        };
      },
    },
    {
      title: 'HAProxy backends UP',
      waitingFor: 'HAProxy to mark every member UP and route to one leader',
      probe: async () => {
        try {
          const stats = await fetchStats(runtime.statsUrl, runtime.statsCredentials, 500);
          const backends = stats.backends.filter((b) => expected.includes(b.name));
          const up = backends.filter((b) => b.up).length;
          // Until then new connections would go to every member, and be closed once one leads.
          const routed = stats.leaderRoutes === undefined || stats.leaderRoutes.length === 1;
          return {
            done: up === n && backends.length === n && routed,
            detail: `${up}/${n} UP (${backends.map((b) => `${b.name} ${b.status}`).join(', ')})${routed ? '' : `; routes to ${stats.leaderRoutes!.join(', ') || 'no leader yet'}`}`,
          };
        } catch (error) {
          return { done: false, detail: `stats page: ${(error as Error).message}` };
        }
      },
    },
    probe === 'read'
      ? {
          title: `read through HAProxy (${runtime.clientEndpoint})`,
          waitingFor: 'a linearizable read through HAProxy',
          probe: async () => currentRevision(runtime.client, 1000).then((revision) => ({ done: true, detail: `revision ${revision}` }), failed),
        }
      : {
          title: `write and read through HAProxy (${runtime.clientEndpoint})`,
          waitingFor: 'a write and read through HAProxy',
          probe: async () => {
            const value = `ready at ${new Date().toISOString()}`;
            try {
              await putKey(runtime.client, 'etcd-lab/ready', value, 1000);
              const read = await getKey(runtime.client, 'etcd-lab/ready', { timeoutMs: 1000 });
              return { done: read === value, detail: read === value ? 'put and get agree' : `read back ${JSON.stringify(read)}` };
            } catch (error) {
              return failed(error);
            }
          },
        },
  ];
}
