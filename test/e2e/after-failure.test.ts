// The seconds after a failure, when a lab is used most: every command that talks to etcd must work
// on its first attempt (or refuse with its own reason, naming the member that is down), never fail
// with a bare connection error. Each case runs ROUNDS times in a row: 2 in `make test` (a first
// attempt right after a failure, twice), 50 in `make soak`, which keeps the statistics.
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplaceResult } from '../../src/lab/membership.js';
import type { FaultResult } from '../../src/lab/faults.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { createTestLab, skipE2E, type CliResult, type TestLab } from './lab-fixture.js';

const ROUNDS = Number(process.env.ETCD_LAB_AFTER_FAILURE_ROUNDS ?? 2);

/** What a user must never see: a connection error or "a bug" where a command should work or refuse. */
const RAW_FAILURE = /deadline exceeded|socket hang up|ECONNRESET|ECONNREFUSED|looks like a bug/i;

/** "The disk died": the member's container and its data volume, gone at once. */
async function destroyMember(lab: TestLab, member: string): Promise<void> {
  const docker = new Docker();
  await docker.getContainer(`${lab.name}-${member}`).remove({ force: true });
  await docker.getVolume(`${lab.name}-${member}-data`).remove();
}

function describeRun(label: string, r: CliResult): string {
  return `${label} exited ${r.code}\n${r.stderr}${r.stdout.slice(0, 2000)}`;
}

describe.skipIf(skipE2E).each([
  { members: 3, tls: false },
  { members: 5, tls: true },
])('member replace right after the disk died, $members members, TLS $tls', ({ members, tls }) => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await createTestLab(`aft${members}${tls ? 't' : ''}`, { members, tls: { enabled: tls } });
    const up = await lab.cli(['up']);
    expect(up).toExitWith(0);
  });
  afterAll(async () => lab?.remove());

  for (const who of ['leader', 'follower'] as const) {
    it(`the ${who}: ${ROUNDS} of ${ROUNDS} first attempts succeed`, { timeout: ROUNDS * 45_000 }, async () => {
      const failures: string[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const status = await lab.json<LabStatus>(['status']);
        expect(status.quorum.healthy, status.summary).toBe(members);
        const victim = who === 'leader' ? status.leader! : status.members.find((m) => !m.isLeader)!.name;
        await destroyMember(lab, victim);
        const r = await lab.cli(['member', 'replace', victim, '--json']);
        if (r.code !== 0) {
          failures.push(describeRun(`round ${round}: member replace ${victim}`, r));
          // Put the lab back for the next round: a second attempt, as a person would.
          const again = await lab.cli(['member', 'replace', victim]);
          expect(again).toExitWith(0, 'second attempt');
          continue;
        }
        const result = JSON.parse(r.stdout) as ReplaceResult;
        expect(result.member).toBe(victim);
      }
      expect(failures, failures.join('\n\n')).toEqual([]);
    });
  }
});

/** A command right after `kill leader`, and what it must do: work, or refuse for its own reason. */
interface AfterKill {
  args: (killed: string, alive: string[]) => string[];
  /** 0: it works; 3: it refuses because a member is down, saying which. */
  code: 0 | 3;
  says?: (killed: string) => RegExp;
}

const AFTER_KILL: Record<string, AfterKill> = {
  status: { args: () => ['status', '--json'], code: 0 },
  'member list': { args: () => ['member', 'list', '--json'], code: 0 },
  leader: { args: (_, alive) => ['leader', alive[0]!], code: 0 },
  'snapshot save': { args: () => ['snapshot', 'save'], code: 0 },
  'alarm list': { args: () => ['alarm', 'list', '--json'], code: 0 },
  'alarm disarm': { args: () => ['alarm', 'disarm'], code: 0 },
  // Three members with one down cannot spare another while it defragments.
  defrag: { args: () => ['defrag'], code: 3, says: () => /only 2 of 3 members are healthy/ },
  // Refused before it compacts anything, for the same reason.
  'alarm recover': { args: () => ['alarm', 'recover'], code: 3, says: () => /only 2 of 3 members are healthy/ },
  scale: { args: () => ['scale', '5'], code: 3, says: (killed) => new RegExp(`${killed} is not healthy`) },
  upgrade: { args: () => ['upgrade', '--etcd-image', 'etcd-lab/etcd:trixie'], code: 3, says: (killed) => new RegExp(`${killed} is not healthy`) },
  check: { args: () => ['check', '--faults', '1'], code: 3, says: (killed) => new RegExp(`check needs every member healthy first: ${killed} `) },
  // A killed member is replaced like one whose disk died (its old data goes).
  'member replace': { args: (killed) => ['member', 'replace', killed], code: 0 },
};

describe.skipIf(skipE2E)('every command right after `kill leader`, 3 members', () => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await createTestLab('aftk', { members: 3 });
    const up = await lab.cli(['up']);
    expect(up).toExitWith(0);
  });
  afterAll(async () => lab?.remove());

  for (const [name, c] of Object.entries(AFTER_KILL)) {
    it(`${name}: ${ROUNDS} of ${ROUNDS} first attempts ${c.code === 0 ? 'succeed' : 'refuse with the reason'}`, { timeout: ROUNDS * 30_000 }, async () => {
      const failures: string[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        // The next command starts the moment the leader is dead: no wait for the election.
        const kill = await lab.json<FaultResult>(['kill', 'leader', '--no-wait']);
        const killed = kill.members[0]!;
        const alive = ['etcd1', 'etcd2', 'etcd3'].filter((m) => m !== killed);
        const r = await lab.cli(c.args(killed, alive));
        const ok = r.code === c.code && !RAW_FAILURE.test(r.stderr) && (c.says === undefined || c.says(killed).test(r.stderr));
        if (!ok) failures.push(describeRun(`round ${round}: ${c.args(killed, alive).join(' ')} (killed ${killed})`, r));
        const start = await lab.cli(['start']);
        expect(start).toExitWith(0);
      }
      expect(failures, failures.join('\n\n')).toEqual([]);
    });
  }
});
