// `etcd-lab scale <n>`: membership grows and shrinks one member at a time on a running lab. New
// members join as learners and are promoted once caught up (etcd's advice since 3.4); leaving
// members hand leadership off first and are removed before they stop. HAProxy is reloaded in place,
// never restarted, and the members that stay keep running. Afterwards the spec, the generated files,
// HAProxy's backends and etcd's membership all say n, so `up` changes nothing.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { UserError } from '../errors.js';
import { sleep } from '../interrupt.js';
import { HARD_STOP_AFTER_MS } from '../render/haproxy.js';
import type { Reporter } from '../progress.js';
import { loadLab, type LoadOptions } from '../config/load.js';
import { Invalid } from '../config/fields.js';
import { memberCount } from '../config/read.js';
import { memberNumber, quorumOf } from '../config/topology.js';
import type { Engine } from '../runtime/engine.js';
import { writeFileAtomic } from '../runtime/files.js';
import { listMembers } from '../runtime/etcd-http.js';
import { LabRuntime } from '../runtime/lab.js';
import { waitUntilReady } from '../runtime/readiness.js';
import { waitUntil } from '../runtime/wait.js';
import { writeLabFiles } from './generate.js';
import { addWhenHealthy, moveLeadershipIn, promoteWhenCaughtUp, removeWhenAllowed, startJoining } from './membership.js';
import { withLab } from './session.js';
import { ExitCode } from '../exit-codes.js';

export interface ScaleOptions extends LoadOptions {
  members: number;
  timeoutMs?: number;
  engine?: Engine;
}

export interface ScaleResult {
  lab: string;
  from: number;
  to: number;
  added: string[];
  removed: string[];
  spec: string;
  elapsedMs: number;
}

/** Sets `members:` in etcd-lab.yaml, every comment and other line kept. */
export async function writeMemberCount(specPath: string, members: number): Promise<void> {
  const doc = parseDocument(await readFile(specPath, 'utf8'));
  doc.set('members', members);
  await writeFileAtomic(specPath, doc.toString());
}

export async function scale(opts: ScaleOptions, reporter: Reporter): Promise<ScaleResult> {
  // A count etcd is safe with, checked before anything else runs.
  const refused = memberCount(opts.members);
  if (refused instanceof Invalid) {
    throw new UserError(`cannot scale to ${opts.members} members: the count ${refused.message}`, { hint: refused.fix, exitCode: ExitCode.badInput });
  }
  return withLab(opts, { lock: 'scale', warn: true }, reporter, async (current) => {
    const started = Date.now();
    const from = current.lab.spec.members;
    const to = opts.members;
    // Each step's deadline: waits, and the compose runs between them.
    const stepMs = opts.timeoutMs ?? 120_000;
    const deadline = () => Date.now() + stepMs;

    // 1. Checks (the count was checked above): a spec to record it in, a whole and healthy lab.
    if (to === from) throw new UserError(`lab "${current.name}" already has ${to} members`, { exitCode: ExitCode.nothingDone });
    if (!current.lab.configPath) {
      throw new UserError('scale records the member count in etcd-lab.yaml, and there is none here', { hint: 'run `etcd-lab init` first (or point --config at yours)', exitCode: ExitCode.badInput });
    }
    // The spec at the new size, validated as any spec (the subnet must hold every address).
    // The images the lab runs now (a local stand-in, say), not whatever the spec would pull.
    const images = { etcd: (await current.memberContainers())[0]?.image, haproxy: (await current.haproxyContainer())?.image };
    const sizedRuntime = (k: number) => {
      const lab = loadLab({ ...opts, overrides: [...(opts.overrides ?? []), { path: 'members', value: k, source: 'scale' }] });
      lab.local.etcdImage = images.etcd ?? lab.local.etcdImage;
      lab.local.haproxyImage = images.haproxy ?? lab.local.haproxyImage;
      return new LabRuntime(lab, current.engine);
    };
    const next = sizedRuntime(to);
    await reporter.step('preflight', async (step) => {
      // Right after a failure, an election may still run: wait for it, so that only the members that
      // are really down are named below.
      await current.awaitLeader(Date.now() + current.electionWaitMs, step).catch(() => undefined);
      const unhealthy = await current.unhealthyMembers();
      if (unhealthy.length > 0) {
        throw new UserError(`${unhealthy.join(', ')} ${unhealthy.length === 1 ? 'is' : 'are'} not healthy: membership changes start from a healthy cluster`, {
          hint: 'while a member joins, the cluster counts it towards quorum as soon as it is promoted, and while one leaves it has one fewer to lose: `etcd-lab start` or `etcd-lab member replace` first',
          exitCode: ExitCode.refused,
        });
      }
      const members = await current.ask('member list', (endpoint) => listMembers(endpoint, 3000), { idempotent: true, step });
      const expected = current.topology.members.map((m) => m.peerUrl).sort();
      const actual = members.map((m) => m.peerUrls[0] ?? '').sort();
      if (members.some((m) => m.isLearner) || expected.join() !== actual.join()) {
        throw new UserError(`etcd's membership is not the ${from} members the lab expects`, { hint: '`etcd-lab member list` shows the difference; `etcd-lab member replace` mends one member', exitCode: ExitCode.refused });
      }
    });

    const added: string[] = [];
    const removed: string[] = [];
    // A runtime whose topology is the first k members, for the waits between steps.
    // Between steps the lab has k members, even ones too: a view of the first k, not a spec of its own.
    const sized = (k: number) => (k === to ? next : new LabRuntime({ ...next.lab, spec: { ...next.lab.spec, members: k } }, current.engine));

    // HAProxy learns the new members by a reload in place: its listening sockets pass to the new
    // process, so no client is refused, and the members that stay keep running (see LabRuntime.compose).
    const reloadHaproxy = (runtime: LabRuntime, what: string) =>
      reporter.step(`HAProxy reloaded with ${what} (listening sockets kept)`, (step) => runtime.reloadHaproxy(deadline(), step));
    try {
      if (to > from) {
        // 2. The compose file knows the new services; HAProxy keeps its backends until they serve.
        await reporter.step(`generate files for ${to} members`, () => writeLabFiles(next.lab));
        // 3. One at a time: member add (learner), start with existing state, promote once caught up.
        for (const member of next.topology.members.slice(from)) {
          const k = memberNumber(member.name)!;
          const at = sized(k);
          // etcd has k - 1 voters while member k joins: the leader is the one a quorum of those names.
          const before = sized(k - 1);
          const joined = await addWhenHealthy(before, member, deadline(), reporter);
          // In etcd's membership from here on, whatever happens next.
          added.push(member.name);
          await startJoining(next, member, joined.members, reporter, deadline());
          await promoteWhenCaughtUp(before, member, joined.added.id, deadline(), reporter);
          await waitUntilMembersServe(at, deadline(), reporter);
        }
      } else {
        // 2. HAProxy first stops sending clients to the members that leave; the old HAProxy process
        //    finishes the connections it has (at most hard-stop-after).
        await reporter.step(`generate files for ${to} members`, () => writeLabFiles(next.lab));
        if (await reloadHaproxy(next, `${to} backends`)) {
          // The replaced HAProxy process keeps the connections it has, some on members about to
          // leave, until hard-stop-after; once it is gone no client waits on a leaving member.
          await reporter.step(`HAProxy's previous process lets go of its connections (hard-stop-after)`, () => sleep(HARD_STOP_AFTER_MS + 250));
        }
        // 3. One at a time from the highest: leadership handed off, member remove, then its container and data go.
        for (const member of [...current.topology.members].reverse().slice(0, from - to)) {
          const k = memberNumber(member.name)!;
          const remaining = sized(k - 1);
          // etcd has k voters while member k leaves: the leader is the one a quorum of those names.
          const at = sized(k);
          if ((await at.leader()) === member.name) await moveLeadershipIn(at, 'etcd1', reporter);
          await reporter.step(`member remove ${member.name}; its container and data`, async (step) => {
            const listed = await at.ask('member list', (endpoint) => listMembers(endpoint, 3000), { idempotent: true, exclude: [member.name], deadline: deadline(), step });
            const found = listed.find((m) => m.peerUrls.includes(member.peerUrl));
            if (found) await removeWhenAllowed(at, found.id, member.name, deadline(), step);
            removed.push(member.name);
            step.update('stopping');
            const container = (await current.memberContainers()).find((c) => c.member === member.name);
            if (container) await current.removeContainers([container], undefined, 5);
            await current.engine.removeVolume(member.volume);
          });
          await waitUntilQuorum(remaining, quorumOf(k - 1), deadline(), reporter);
        }
      }
    } catch (error) {
      if (added.length > 0 || removed.length > 0) {
        const now = from + added.length - removed.length;
        throw new UserError(`scaling stopped with ${now} members in etcd's membership (${[...added.map((m) => `${m} added`), ...removed.map((m) => `${m} removed`)].join(', ')}): ${(error as Error).message}`, {
          hint:
            `\`etcd-lab member list\` shows etcd's view beside the lab's; etcd-lab.yaml still says ${from}. ` +
            (added.length > 0
              ? 'A member that joined but does not serve can be taken out with `etcdctl member remove <ID>` (then `docker rm -f` its container)'
              : 'The members that left are gone for good: set members: in etcd-lab.yaml to what etcd has'),
          exitCode: ExitCode.failedPartWay,
          cause: error,
        });
      }
      // Nothing joined or left yet: the files and HAProxy go back to the current size, unused volumes go.
      await writeLabFiles(sizedRuntime(from).lab).catch(() => {});
      await current.reloadHaproxy(Date.now() + 10_000).catch(() => {});
      for (const m of next.topology.members.slice(from)) await current.engine.removeVolume(m.volume).catch(() => {});
      throw error;
    }

    // 4. The count is recorded: etcd and the files have the new membership. The members that stayed
    //    were not restarted (see LabRuntime.compose).
    await reporter.step(`record members: ${to} in ${current.lab.configPath}`, () => writeMemberCount(current.lab.configPath!, to));
    // 5. Growing: clients reach the new members once they are voters that serve. A failure here is
    //    HAProxy's alone: the membership change is done, and `up` reloads HAProxy.
    if (to > from) {
      await reloadHaproxy(next, `${to} backends`).catch((error: unknown) => {
        throw new UserError(`${to} members serve, but HAProxy was not reloaded with them: ${(error as Error).message}`, {
          hint: '`etcd-lab up` reloads it (`etcd-lab logs haproxy` says what it refused); the membership change itself is done',
          exitCode: ExitCode.failedPartWay,
          cause: error,
        });
      });
    }
    await waitUntilReady(next, deadline(), reporter, { probe: 'read' });
    return { lab: current.name, from, to, added, removed, spec: current.lab.configPath, elapsedMs: Date.now() - started };
  });
}

async function waitUntilQuorum(runtime: LabRuntime, needed: number, deadline: number, reporter: Reporter): Promise<void> {
  await reporter.step(`${runtime.topology.members.length} members agree on a leader`, (step) =>
    waitUntil(
      'the remaining members to agree on a leader',
      deadline,
      async () => {
        const view = await runtime.leaderView();
        const answering = view.answers.filter((a) => a.status).length;
        const following = view.elected?.followers.length ?? 0;
        return { done: view.container !== undefined && following >= needed && following === answering, detail: `${answering} answering, ${following} following ${view.elected?.member ?? 'a leader'}` };
      },
      step,
    ),
  );
}

/** The first k members agree on one leader and each answers /health: a joined member serves. */
async function waitUntilMembersServe(runtime: LabRuntime, deadline: number, reporter: Reporter): Promise<void> {
  const n = runtime.topology.members.length;
  await reporter.step(`${n} members serve`, (step) =>
    waitUntil(
      `the ${n} members to serve`,
      deadline,
      async () => {
        const [view, unhealthy] = await Promise.all([runtime.leaderView(), runtime.unhealthyMembers()]);
        const following = view.elected?.followers.length ?? 0;
        return { done: following === n && unhealthy.length === 0, detail: `${following}/${n} following ${view.elected?.member ?? 'a leader'}${unhealthy.length ? `; not healthy: ${unhealthy.join(', ')}` : ''}` };
      },
      step,
      { intervalMs: 200 },
    ),
  );
}
