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
import type { ContainerInfo, Engine, ServiceRun } from '../../src/runtime/engine.js';
import { impair, impairmentScript, unimpair } from '../../src/runtime/impairments.js';
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
function stubRuntime(opts: { output: string; helperState: string; existing?: ContainerInfo[] }) {
  const calls: string[] = [];
  const helpers: ContainerInfo[] = [...(opts.existing ?? [])];
  const engine = {
    containers: async () => helpers.map((h) => ({ ...h })),
    runService: async (run: ServiceRun) => {
      calls.push(`run ${run.name} on ${run.network} with ${run.capAdd?.join(',')}`);
      helpers.push({ id: 'helper', name: run.name, labels: run.labels, image: run.image, state: opts.helperState, status: '', hostPorts: {}, networks: [] });
      return 'helper';
    },
    logs: async (_id: string, o: { stdout: NodeJS.WritableStream }) => {
      o.stdout.write(opts.output);
    },
    removeContainer: async (id: string, grace?: number) => {
      calls.push(`remove ${id} (grace ${grace} s)`);
      helpers.splice(helpers.findIndex((h) => h.id === id), 1);
    },
  } as unknown as Engine;
  const runtime = new LabRuntime(loadLab({ cwd: dir, overrides: [{ path: 'name', value: 'lab', source: 'test' }] }), engine);
  return { runtime, calls, helpers };
}

describe('the impairment helper', () => {
  it('loss: each peer packet in and out dropped with the given probability, in chains of its own, taken out on SIGTERM', () => {
    const script = impairmentScript('loss', 30);
    const drops = script.split('\n').filter((l) => l.includes('-j DROP'));
    expect(drops).toEqual([
      'iptables -A ETCD_LAB_IN -p tcp --dport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
      'iptables -A ETCD_LAB_IN -p tcp --sport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
      'iptables -A ETCD_LAB_OUT -p tcp --dport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
      'iptables -A ETCD_LAB_OUT -p tcp --sport 2380 -m statistic --mode random --probability 0.3000 -j DROP',
    ]);
    expect(script).toMatch(/^trap undo TERM INT$/m);
    expect(script).toMatch(/undo\(\) \{ iptables -D INPUT -j ETCD_LAB_IN; iptables -D OUTPUT -j ETCD_LAB_OUT;/);
    // The client port is never touched.
    expect(script).not.toMatch(/2379/);
  });

  it('blackhole: every peer packet coming in dropped, none going out', () => {
    const drops = impairmentScript('blackhole', 100).split('\n').filter((l) => l.includes('-j DROP'));
    expect(drops).toEqual(['iptables -A ETCD_LAB_IN -p tcp --dport 2380 -j DROP', 'iptables -A ETCD_LAB_IN -p tcp --sport 2380 -j DROP']);
  });

  it("runs in the member's network namespace with NET_ADMIN, and returns once its rules are in", async () => {
    const { runtime, calls } = stubRuntime({ output: 'etcd-lab: impaired\n', helperState: 'running' });
    expect(await impair(runtime, member('etcd2'), 'loss', 25)).toBe('etcd2: 25% of its peer packets dropped, both ways (clients still reach it)');
    expect(calls).toEqual(['run lab-etcd2-loss on container:id-etcd2 with NET_ADMIN']);
  });

  it('a helper whose iptables fails: its own words, exit 4, and the helper removed', async () => {
    const { runtime, calls, helpers } = stubRuntime({ output: "iptables v1.8.11 (nf_tables): Couldn't load match `statistic':No such file or directory\n", helperState: 'exited' });
    const error = await impair(runtime, member('etcd1'), 'loss', 30).then(() => undefined, (e: unknown) => e as UserError);
    expect(error).toBeInstanceOf(UserError);
    expect(error?.message).toBe("could not impair etcd1's network: iptables v1.8.11 (nf_tables): Couldn't load match `statistic':No such file or directory");
    expect(error?.exitCode).toBe(ExitCode.refused);
    expect(calls.at(-1)).toBe('remove helper (grace 0 s)');
    expect(helpers).toEqual([]);
  });

  it('a member that is not running is refused before any helper starts; one already impaired is left as it is', async () => {
    const stopped = stubRuntime({ output: '', helperState: 'running' });
    const error = await impair(stopped.runtime, member('etcd3', 'exited'), 'blackhole', 100).then(() => undefined, (e: unknown) => e as UserError);
    expect(error?.message).toBe("etcd3 is exited: only a running member's network can be impaired");
    expect(stopped.calls).toEqual([]);

    const existing: ContainerInfo = { id: 'old', name: 'lab-etcd3-loss', labels: { [LABEL.lab]: 'lab', [LABEL.role]: 'impairment', [LABEL.member]: 'etcd3', 'io.etcd-lab.impairment': 'loss' }, image: 'x', state: 'running', status: '', hostPorts: {}, networks: [] };
    const impaired = stubRuntime({ output: '', helperState: 'running', existing: [existing] });
    expect(await impair(impaired.runtime, member('etcd3'), 'blackhole', 100)).toBe('etcd3: already impaired (loss); `etcd-lab heal etcd3` first to change it');
    expect(impaired.calls).toEqual([]);
    // Undone with a grace period: SIGTERM lets the helper take its rules out.
    expect(await unimpair(impaired.runtime, existing)).toBe('etcd3: no more packet loss');
    expect(impaired.calls).toEqual(['remove old (grace 5 s)']);
  });
});
