// The step runner every long operation uses: order, skips, undo of the started steps last first,
// --retain, an undo that fails, and the one message an interrupt ends with.
import { describe, expect, it } from 'vitest';
import { Interrupted } from '../../src/interrupt.js';
import { RecordingReporter } from '../../src/progress.js';
import { scaleSteps } from '../../src/lab/scale.js';
import { runSteps, titleOf, type Step } from '../../src/lab/steps.js';
import { upgradeSteps } from '../../src/lab/upgrade.js';
import { restoreSteps } from '../../src/lab/restore.js';
import { APISERVER_STEPS } from '../../src/lab/apiserver.js';
import { DOWN_STEPS } from '../../src/lab/down.js';
import { FAULT_STEPS } from '../../src/lab/faults.js';
import { DEFRAG_STEPS, RECOVER_STEPS } from '../../src/lab/maintenance.js';

interface Ctx {
  made: string[];
  log: string[];
}

/** A step that makes `thing` (or fails with `fail`) and whose undo removes it. */
const making = (thing: string, fail?: Error): Step<Ctx> => ({
  title: `make ${thing}`,
  run: async (ctx) => {
    ctx.log.push(`run ${thing}`);
    if (fail) throw fail;
    ctx.made.push(thing);
  },
  undo: async (ctx) => {
    ctx.log.push(`undo ${thing}`);
    const had = ctx.made.includes(thing);
    ctx.made = ctx.made.filter((t) => t !== thing);
    return had ? [thing] : [];
  },
});

const fresh = (): Ctx => ({ made: [], log: [] });

describe('runSteps', () => {
  it('runs the steps in order, one status line each, and skips those whose `when` says no', async () => {
    const reporter = new RecordingReporter();
    const ctx = await runSteps([making('a'), { ...making('b'), when: () => false }, { title: (c: Ctx) => `then ${c.made.join('+')}`, run: async () => {} }], fresh(), reporter, { command: 'demo' });
    expect(ctx.log).toEqual(['run a']);
    expect(reporter.events).toEqual(['step: make a', 'done: make a', 'step: then a', 'done: then a']);
  });

  it('a failure undoes every started step, last first (the failed one too: it may be half-made), then rethrows it', async () => {
    const reporter = new RecordingReporter();
    const ctx = fresh();
    const boom = new Error('boom');
    await expect(runSteps([making('a'), making('b'), making('c', boom), making('d')], ctx, reporter, { command: 'demo' })).rejects.toBe(boom);
    expect(ctx.log).toEqual(['run a', 'run b', 'run c', 'undo c', 'undo b', 'undo a']);
    expect(ctx.made).toEqual([]);
    expect(reporter.events.at(-1)).toBe('failed: make c');
  });

  it('an interrupt ends in one message that says what was rolled back', async () => {
    const ctx = fresh();
    const error = await runSteps([making('network x'), making('container y'), making('z', new Interrupted())], ctx, new RecordingReporter(), { command: 'demo' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Interrupted);
    expect((error as Error).message).toBe('demo interrupted; rolled back what it had created (container y, network x)');
  });

  it('an interrupt before anything undoable started says so', async () => {
    const quiet: Step<Ctx> = { title: 'look', run: async () => { throw new Interrupted(); } };
    await expect(runSteps([quiet, making('a')], fresh(), new RecordingReporter(), { command: 'demo' })).rejects.toThrow('demo interrupted before it had made anything to roll back');
  });

  it('--retain keeps what was made, and says how to remove it', async () => {
    const reporter = new RecordingReporter();
    const ctx = fresh();
    await expect(runSteps([making('a'), making('b', new Error('boom'))], ctx, reporter, { command: 'demo', retain: true, retainedHint: '`demo down` removes it' })).rejects.toThrow('boom');
    expect(ctx.made).toEqual(['a']);
    expect(ctx.log).not.toContain('undo a');
    expect(reporter.events).toContain('warn: --retain: leaving what this run made as it is, to inspect (`demo down` removes it)');
  });

  it('an undo that fails is reported, and the earlier steps are still undone', async () => {
    const reporter = new RecordingReporter();
    const ctx = fresh();
    const stuck: Step<Ctx> = { ...making('b'), undo: async () => { throw new Error('engine hung'); } };
    await expect(runSteps([making('a'), stuck, making('c', new Error('boom'))], ctx, reporter, { command: 'demo' })).rejects.toThrow('boom');
    expect(ctx.made).toEqual(['b']);
    expect(reporter.events).toContain('warn: could not undo "make b": engine hung; `etcd-lab status` shows what is left');
  });

  it('past a step that commits, a failure undoes only what came after it, and `failure` is told', async () => {
    const ctx = fresh();
    const boom = new Error('boom');
    const seen: { committed: boolean }[] = [];
    const commit: Step<Ctx> = { ...making('membership'), commits: true };
    const error = await runSteps([making('files'), commit, making('after'), making('last', boom)], ctx, new RecordingReporter(), {
      command: 'demo',
      failure: (e, at) => {
        seen.push(at);
        return new Error(`stopped part-way: ${(e as Error).message}`);
      },
    }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('stopped part-way: boom');
    expect(seen).toEqual([{ committed: true }]);
    expect(ctx.log).toEqual(['run files', 'run membership', 'run after', 'run last', 'undo last', 'undo after']);
    expect(ctx.made).toEqual(['files', 'membership']);
  });

  it('a step that commits only once it did what it says (a predicate): failing before that, everything is undone', async () => {
    const ctx = fresh();
    const half: Step<Ctx> = { ...making('member', new Error('member add refused')), commits: (c) => c.made.includes('member') };
    const seen: { committed: boolean }[] = [];
    await runSteps([making('files'), half], ctx, new RecordingReporter(), { command: 'demo', failure: (e, at) => (seen.push(at), e) }).catch(() => undefined);
    expect(seen).toEqual([{ committed: false }]);
    expect(ctx.log).toEqual(['run files', 'run member', 'undo member', 'undo files']);
    expect(ctx.made).toEqual([]);
  });

  it('Ctrl-C past the point of no return goes to `failure` too, nothing before it undone', async () => {
    const ctx = fresh();
    const error = await runSteps([making('files'), { ...making('membership'), commits: true }, making('z', new Interrupted())], ctx, new RecordingReporter(), {
      command: 'demo',
      failure: (e, at) => (at.committed && e instanceof Interrupted ? new Interrupted('demo interrupted part-way', 'run it again to go on') : e),
    }).catch((e: unknown) => e);
    expect((error as Interrupted).message).toBe('demo interrupted part-way');
    expect(ctx.made).toEqual(['files', 'membership']);
  });

  it('a `failure` that hands the error back leaves the runner\'s words: an interrupt says what was rolled back', async () => {
    const ctx = fresh();
    const error = await runSteps([making('network x'), making('z', new Interrupted())], ctx, new RecordingReporter(), { command: 'demo', failure: (e) => e }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('demo interrupted; rolled back what it had created (network x)');
  });

  it('Ctrl-C past the point of no return, with no words of the operation\'s own, says that what was done stays', async () => {
    const ctx = fresh();
    const error = await runSteps([making('files'), { ...making('membership'), commits: true }, making('z', new Interrupted())], ctx, new RecordingReporter(), { command: 'demo' }).catch((e: unknown) => e);
    expect((error as Error).message).toBe('demo interrupted past the point where it can be undone: what it had done stays');
    expect(ctx.made).toEqual(['files', 'membership']);
  });

  it('a step that reports itself gets no line of its own', async () => {
    const reporter = new RecordingReporter();
    await runSteps([{ title: 'images', reportsItself: true, run: async () => {} }], fresh(), reporter, { command: 'demo' });
    expect(reporter.events).toEqual([]);
  });
});

describe('the step lists of long operations', () => {
  const titles = <C>(steps: Step<C>[]) => steps.map((s) => (typeof s.title === 'string' ? s.title : '(named at run time)'));

  it('scale 3 → 5: one member at a time, the count recorded only once both serve, HAProxy told last', () => {
    expect(titles(scaleSteps(3, 5))).toEqual([
      'preflight',
      'generate files for 5 members',
      'etcd4 joins as a learner, starts, is promoted and serves',
      'etcd5 joins as a learner, starts, is promoted and serves',
      'record members: 5 in etcd-lab.yaml',
      'HAProxy reloaded with 5 backends (listening sockets kept)',
      'lab ready',
    ]);
  });

  it('scale 5 → 3: HAProxy lets go of the leaving members first; they leave from the highest, leadership handed off first', () => {
    expect(titles(scaleSteps(5, 3))).toEqual([
      'preflight',
      'generate files for 3 members',
      'HAProxy reloaded with 3 backends (listening sockets kept)',
      "HAProxy's previous process lets go of its connections (hard-stop-after)",
      'leadership off etcd5',
      'member remove etcd5; its container and data',
      '4 members agree on a leader',
      'leadership off etcd4',
      'member remove etcd4; its container and data',
      '3 members agree on a leader',
      'record members: 3 in etcd-lab.yaml',
      'lab ready',
    ]);
  });

  it('only the file generation of scale has an undo: a member that joined or left cannot be taken back (each join and leave commits)', () => {
    expect(scaleSteps(3, 5).filter((s) => s.undo).map((s) => s.title)).toEqual(['generate files for 5 members']);
    expect(scaleSteps(3, 5).filter((s) => s.commits).map((s) => s.title)).toEqual(['etcd4 joins as a learner, starts, is promoted and serves', 'etcd5 joins as a learner, starts, is promoted and serves']);
    expect(scaleSteps(5, 3).filter((s) => s.commits).map((s) => s.title)).toEqual(['member remove etcd5; its container and data', 'member remove etcd4; its container and data']);
  });
});

describe('upgrade', () => {
  it('a snapshot before anything changes, the order decided once the leader is known, one member at a time, then recorded', () => {
    const steps = upgradeSteps(3);
    expect(steps.map((s) => (typeof s.title === 'string' ? s.title : 'per member or path'))).toEqual([
      'preflight',
      'from which version to which',
      'snapshot before anything changes',
      'order: followers first, the leader last',
      'per member or path',
      'per member or path',
      'per member or path',
      'per member or path',
      'lab ready',
      'per member or path',
    ]);
    const ctx = { order: ['etcd2', 'etcd3', 'etcd1'], image: 'etcd:new' } as never;
    expect(steps.slice(4, 7).map((s) => titleOf(s, ctx))).toEqual([
      'etcd2: hand leadership over if it leads, recreate on etcd:new, healthy and caught up',
      'etcd3: hand leadership over if it leads, recreate on etcd:new, healthy and caught up',
      'etcd1: hand leadership over if it leads, recreate on etcd:new, healthy and caught up',
    ]);
    expect(steps.some((s) => s.undo)).toBe(false); // etcd cannot go back a version
  });
});

// Which steps run, with their titles, for a context: the same filter the runner applies.
const plan = <C>(steps: Step<C>[], ctx: C) => steps.filter((s) => !s.when || s.when(ctx)).map((s) => `${titleOf(s, ctx)}${s.undo ? ' [undo]' : ''}`);

describe('snapshot restore', () => {
  it("stops the lab's API server after etcdutl prepared the data and before the members, and starts it only once the restored lab is proven and cleaned up", () => {
    const ctx = { apiServer: { id: 'c1', name: 'lab-apiserver', stopped: true } } as never;
    expect(plan(restoreSteps(3), ctx)).toEqual([
      'preflight',
      'what the snapshot holds, and the go-ahead',
      'snapshot restore for 3 members [undo]',
      'stop the API server lab-apiserver (it caches what etcd holds) [undo]',
      'stop the members [undo]',
      'keep the current data',
      'put the restored data in place',
      'start the members',
      'lab ready',
      "a read at the snapshot's revision or later",
      'remove the replaced data',
      'start the API server lab-apiserver again',
    ]);
  });

  it('without an API server, nothing of it runs', () => {
    expect(plan(restoreSteps(3), {} as never).filter((t) => t.includes('API server'))).toEqual([]);
  });
});

describe('etcd-lab apiserver', () => {
  it('checks before it builds or makes anything; what it makes has an undo', () => {
    const ctx = { runtime: { lab: { spec: { name: 'lab', kind: { endpoint: 'network' } }, outDir: '/x/generated' } }, opts: { mergeKubeconfig: '/home/me/.kube/config' }, mode: 'network', endpoint: 'http://lab-haproxy:2379' } as never;
    const steps = plan(APISERVER_STEPS, ctx);
    expect(steps.filter((t) => t.endsWith('[undo]'))).toEqual([
      expect.stringMatching(/^endpoint /),
      'start lab-apiserver [undo]',
      'write /x/generated/apiserver/kubeconfig [undo]',
      'merge context etcd-lab-lab into /home/me/.kube/config [undo]',
    ]);
    const at = (re: RegExp) => steps.findIndex((t) => re.test(t));
    // The cheap checks before the image: a lab that is down must not cost an image build.
    expect(at(/serving$/)).toBe(0);
    expect(at(/no API server or KIND cluster/)).toBe(1);
    expect(at(/^image /)).toBe(2);
    expect(at(/API server ready/)).toBeGreaterThan(at(/^start lab-apiserver/));
    expect(at(/^merge context/)).toBe(steps.length - 1);
    // Without --merge-kubeconfig, a person's kubeconfig is not touched.
    expect(plan(APISERVER_STEPS, { ...(ctx as object), opts: {} } as never).some((t) => t.startsWith('merge context'))).toBe(false);
  });
});

describe('down, maintenance and the faults', () => {
  const titles = <C>(steps: Step<C>[]) => steps.map((s) => (typeof s.title === 'string' ? s.title : '(named by what it finds)'));

  it('alarm recover follows etcd\'s procedure in its order; defrag plans before it changes anything; neither undoes', () => {
    expect(titles(RECOVER_STEPS)).toEqual([
      'which members, in which order',
      'compact to the current revision',
      'defragment, followers first, the leader last',
      'disarm the alarms',
      'a write through HAProxy',
      'room left in the quota',
    ]);
    expect(titles(DEFRAG_STEPS)).toEqual(['which members, in which order', 'compact to the current revision', 'defragment, followers first, the leader last']);
    expect([...RECOVER_STEPS, ...DEFRAG_STEPS].some((s) => s.undo)).toBe(false);
  });

  it('down asks first and undoes nothing; a fault acts only once its members are known, and only its action has an undo (and commits)', () => {
    expect(titles(DOWN_STEPS)[0]).toBe('what the lab has');
    expect(DOWN_STEPS.some((s) => s.undo)).toBe(false);
    expect(titles(FAULT_STEPS)).toEqual(['which members', "the network helper's image", '(named by what it finds)', 'the election, or the members serving again']);
    expect(FAULT_STEPS.filter((s) => s.undo)).toHaveLength(1);
    expect(FAULT_STEPS[2]!.commits).toBeTypeOf('function');
  });
});
