// `loss` and `blackhole`: the helper's iptables script, and what impair/unimpair do when the helper
// cannot do its job (no statistic match, a member not running, one already impaired) — against a
// stub engine, no Docker. test/e2e/network-faults.test.ts shows the rules at work on a real lab.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLab } from '../../src/config/load.js';
import { LABEL } from '../../src/config/topology.js';
import { UserError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import type { ContainerInfo, Engine, ServiceRun } from '../../src/engine/engine.js';
import { impairments } from '../../src/runtime/impairments.js';
import { impair, impairmentScript, unimpair } from '../../src/lab/network-faults.js';
import { LabRuntime, type LabMemberContainer } from '../../src/runtime/lab.js';

const dir = mkdtempSync(join(tmpdir(), 'etcd-lab-impair-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const member = (name: string, state = 'running'): LabMemberContainer => ({
  id: `id-${name}`,
  name: `lab-${name}`,
  member: name,
  labels: { [LABEL.lab]: 'lab', [LABEL.role]: 'etcd', [LABEL.member]: name },
  image: 'etcd',
  state,
  status: '',
  hostPorts: {},
  networks: ['lab'],
});

/** A stub engine: its helpers say `output` and end up in `helperState`; every call recorded. */
function stubRuntime(opts: { output: string; helperState: string; existing?: ContainerInfo[]; members?: LabMemberContainer[] }) {
  const calls: string[] = [];
  const helpers: ContainerInfo[] = [...(opts.existing ?? [])];
  const members = opts.members ?? ['etcd1', 'etcd2', 'etcd3'].map((m) => member(m));
  const engine = {
    containers: {
      list: async () => [...members, ...helpers].map((h) => ({ ...h })),
      run: async (run: ServiceRun) => {
        calls.push(`run ${run.name} on ${run.network} with ${run.capAdd?.join(',')}`);
        helpers.push({ id: 'helper', name: run.name, labels: run.labels, image: run.image, state: opts.helperState, status: '', hostPorts: {}, networks: [] });
        return 'helper';
      },
      logs: async (_id: string, o: { stdout: NodeJS.WritableStream }) => {
        o.stdout.write(opts.output);
      },
      remove: async (id: string, grace?: number) => {
        calls.push(`remove ${id} (grace ${grace} s)`);
        helpers.splice(helpers.findIndex((h) => h.id === id), 1);
      },
    },
  } as unknown as Engine;
  const runtime = new LabRuntime(loadLab({ cwd: dir, overrides: [{ path: 'name', value: 'lab', source: 'test' }] }), engine);
  return { runtime, calls, helpers };
}

const helper = (id: string, target: string, targetContainer: string, state = 'running'): ContainerInfo => ({
  id,
  name: `lab-${target}-loss`,
  labels: { [LABEL.lab]: 'lab', [LABEL.role]: 'impairment', [LABEL.member]: target, 'io.etcd-lab.impairment': 'loss', 'io.etcd-lab.impaired-container': targetContainer },
  image: 'x',
  state,
  status: '',
  hostPorts: {},
  networks: [],
});

describe('the impairment helper', () => {
  it('loss: each peer packet in and out dropped with the given probability, in chains of its own, taken out on SIGTERM', () => {
    const script = impairmentScript({ kind: 'loss', percent: 30 });
    const drops = script.split('\n').filter((l) => l.startsWith('iptables -A'));
    expect(drops).toEqual([
      'iptables -A ETCD_LAB_IN -p tcp --dport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
      'iptables -A ETCD_LAB_IN -p tcp --sport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
      'iptables -A ETCD_LAB_OUT -p tcp --dport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
      'iptables -A ETCD_LAB_OUT -p tcp --sport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
    ]);
    // The trap comes before any rule, and a dead helper's leftovers are cleared before new chains are made.
    const lines = script.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'undo() { set +e; iptables -D INPUT -j ETCD_LAB_IN; iptables -D OUTPUT -j ETCD_LAB_OUT; iptables -F ETCD_LAB_IN; iptables -F ETCD_LAB_OUT; iptables -X ETCD_LAB_IN; iptables -X ETCD_LAB_OUT; exit 0; }',
      'trap undo TERM INT',
      '{ iptables -D INPUT -j ETCD_LAB_IN; iptables -D OUTPUT -j ETCD_LAB_OUT; iptables -F ETCD_LAB_IN; iptables -F ETCD_LAB_OUT; iptables -X ETCD_LAB_IN; iptables -X ETCD_LAB_OUT; } 2>/dev/null || true',
      'set -e',
    ]);
    // The client port is never touched.
    expect(script).not.toMatch(/2379/);
  });

  it('blackhole, one way: peer packets coming in that carry data dropped (acknowledgements pass), none going out', () => {
    const drops = impairmentScript({ kind: 'blackhole' }).split('\n').filter((l) => l.startsWith('iptables -A'));
    expect(drops).toEqual(['iptables -A ETCD_LAB_IN -p tcp --dport 2380 -m length --length 61:65535 -j DROP', 'iptables -A ETCD_LAB_IN -p tcp --sport 2380 -m length --length 61:65535 -j DROP']);
  });

  it("delay: the member's own new peer connections redirected to the forwarder (its own let through), the old ones reset", () => {
    const script = impairmentScript({ kind: 'delay', ms: 250 }, ['10.1.0.12', '10.1.0.13']);
    const lines = script.split('\n');
    expect(lines).toContain('setpriv --reuid=65534 --regid=65534 --clear-groups node -e "$ETCD_LAB_FORWARDER" 250 23800=10.1.0.12:2380 23801=10.1.0.13:2380 &');
    expect(lines.filter((l) => l.startsWith('iptables -t nat -A'))).toEqual([
      'iptables -t nat -A ETCD_LAB_NAT -p tcp -d 10.1.0.12 --dport 2380 -m owner ! --uid-owner 65534 -j REDIRECT --to-ports 23800',
      'iptables -t nat -A ETCD_LAB_NAT -p tcp -d 10.1.0.13 --dport 2380 -m owner ! --uid-owner 65534 -j REDIRECT --to-ports 23801',
    ]);
    expect(lines.filter((l) => l.startsWith('iptables -A'))).toEqual(['iptables -A ETCD_LAB_OUT -p tcp --dport 2380 -m owner ! --uid-owner 65534 -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset']);
    // The forwarder listens before any connection is redirected to it; undo takes the NAT chain out too.
    expect(lines.findIndex((l) => l === '[ -e /tmp/forwarder-ready ]')).toBeLessThan(lines.findIndex((l) => l.startsWith('iptables -t nat -A')));
    expect(lines[0]).toContain('iptables -t nat -D OUTPUT -j ETCD_LAB_NAT; iptables -t nat -F ETCD_LAB_NAT; iptables -t nat -X ETCD_LAB_NAT');
  });

  it("runs in the member's network namespace with NET_ADMIN, and returns once its rules are in", async () => {
    const { runtime, calls } = stubRuntime({ output: 'etcd-lab: impaired\n', helperState: 'running' });
    expect(await impair(runtime, member('etcd2'), { kind: 'loss', percent: 25 })).toBe('etcd2: 25% of its peer packets dropped, both ways (clients still reach it)');
    expect(calls).toEqual(['run lab-etcd2-loss on container:id-etcd2 with NET_ADMIN']);
  });

  it('a helper whose iptables fails: its own words, exit 3, and the helper removed', async () => {
    const { runtime, calls, helpers } = stubRuntime({ output: "iptables v1.8.11 (nf_tables): Couldn't load match `statistic':No such file or directory\n", helperState: 'exited' });
    const error = await impair(runtime, member('etcd1'), { kind: 'loss', percent: 30 }).then(() => undefined, (e: unknown) => e as UserError);
    expect(error).toBeInstanceOf(UserError);
    expect(error?.message).toBe("could not impair etcd1's network: iptables v1.8.11 (nf_tables): Couldn't load match `statistic':No such file or directory");
    expect(error?.exitCode).toBe(ExitCode.refused);
    expect(calls).toContain('remove helper (grace 0 s)');
    expect(helpers).toEqual([]);
  });

  it('a member that is not running is refused before any helper starts; one already impaired is refused, and left as it is', async () => {
    const stopped = stubRuntime({ output: '', helperState: 'running' });
    const error = await impair(stopped.runtime, member('etcd3', 'exited'), { kind: 'blackhole' }).then(() => undefined, (e: unknown) => e as UserError);
    expect(error?.message).toBe("etcd3 is exited: only a running member's network can be impaired");
    expect(stopped.calls).toEqual([]);

    const existing = helper('old', 'etcd3', 'id-etcd3');
    const impaired = stubRuntime({ output: '', helperState: 'running', existing: [existing] });
    const refused = await impair(impaired.runtime, member('etcd3'), { kind: 'blackhole' }).then(() => undefined, (e: unknown) => e as UserError);
    expect(refused?.message).toBe('etcd3 is already impaired (loss)');
    expect(refused?.exitCode).toBe(ExitCode.refused);
    expect(impaired.calls).toEqual([]);
    // Undone with a grace period: SIGTERM lets the helper take its rules out.
    expect(await unimpair(impaired.runtime, existing)).toBe('etcd3: no more packet loss');
    expect(impaired.calls).toEqual(['remove old (grace 5 s)']);
  });

  it('a helper that holds nothing any more (stopped, or its member replaced or exited) is not counted, and is removed', async () => {
    const live = helper('live', 'etcd1', 'id-etcd1');
    const stopped = helper('stopped', 'etcd2', 'id-etcd2', 'exited');
    const replaced = helper('replaced', 'etcd3', 'id-of-etcd3-before-its-replacement');
    const { runtime, calls } = stubRuntime({ output: '', helperState: 'running', existing: [live, stopped, replaced] });
    expect((await impairments(runtime)).map((h) => h.id)).toEqual(['live']);
    expect(calls).toEqual(['remove stopped (grace 0 s)', 'remove replaced (grace 0 s)']);

    const exited = stubRuntime({ output: '', helperState: 'running', existing: [helper('h', 'etcd2', 'id-etcd2')], members: [member('etcd1'), member('etcd2', 'exited'), member('etcd3')] });
    expect(await impairments(exited.runtime)).toEqual([]);
  });
});
