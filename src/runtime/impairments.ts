// Network impairments of one member's peer traffic, as etcd's robustness tests inject them through
// their peer proxy: random loss, and a one-way blackhole. No netem here (kernels without it are
// common), so iptables: a helper container in the member's own network namespace adds the rules
// when it starts and removes them when it is stopped (SIGTERM). The fault lasts exactly as long as
// the helper runs, and the helper carries the lab's labels: `heal`, `check`'s clean-up and `down`
// find it like any of the lab's containers. A member restarted meanwhile gets a fresh namespace,
// without the rules.
import { Writable } from 'node:stream';
import { ETCD_PEER_PORT, LABEL, type Role } from '../config/topology.js';
import { UserError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { ContainerInfo } from './engine.js';
import { NETTOOLS_IMAGE } from './images.js';
import type { LabMemberContainer, LabRuntime } from './lab.js';

export type ImpairmentKind = 'loss' | 'blackhole';

/** The label that says which impairment a helper holds. */
const KIND_LABEL = 'io.etcd-lab.impairment';
const READY_LINE = 'etcd-lab: impaired';

/**
 * The helper's script: the rules in chains of their own (so removing them touches nothing else),
 * removed again on SIGTERM. `loss`: each peer packet in and out dropped with probability p.
 * `blackhole`: every peer packet coming in dropped; the member still sends (its TCP streams stall
 * once unacknowledged), and its client port is untouched: clients and HAProxy's checks still reach it.
 */
export function impairmentScript(kind: ImpairmentKind, percent: number): string {
  const peer = (chain: string, match: string) => ['--dport', '--sport'].map((port) => [`iptables -A ${chain} -p tcp ${port} ${ETCD_PEER_PORT}`, match, '-j DROP'].filter(Boolean).join(' '));
  const random = `-m statistic --mode random --probability ${(percent / 100).toFixed(4)}`;
  const rules = kind === 'loss' ? [...peer('ETCD_LAB_IN', random), ...peer('ETCD_LAB_OUT', random)] : peer('ETCD_LAB_IN', '');
  return [
    'set -e',
    'iptables -N ETCD_LAB_IN',
    'iptables -N ETCD_LAB_OUT',
    ...rules,
    'iptables -I INPUT -j ETCD_LAB_IN',
    'iptables -I OUTPUT -j ETCD_LAB_OUT',
    'undo() { iptables -D INPUT -j ETCD_LAB_IN; iptables -D OUTPUT -j ETCD_LAB_OUT; iptables -F ETCD_LAB_IN; iptables -F ETCD_LAB_OUT; iptables -X ETCD_LAB_IN; iptables -X ETCD_LAB_OUT; exit 0; }',
    'trap undo TERM INT',
    `echo '${READY_LINE}'`,
    'sleep infinity & wait $!',
  ].join('\n');
}

export function describeImpairment(member: string, kind: ImpairmentKind, percent: number): string {
  return kind === 'loss'
    ? `${member}: ${percent}% of its peer packets dropped, both ways (clients still reach it)`
    : `${member}: hears nothing from its peers (their packets to it are dropped; it still sends, and clients still reach it)`;
}

/** The lab's impairment helpers, running or not. */
export async function impairments(runtime: LabRuntime): Promise<ContainerInfo[]> {
  return (await runtime.containers()).filter((c) => c.labels[LABEL.role] === ('impairment' satisfies Role));
}

export function impairmentOf(helper: ContainerInfo): { member: string; kind: ImpairmentKind } {
  return { member: helper.labels[LABEL.member] ?? '', kind: helper.labels[KIND_LABEL] === 'loss' ? 'loss' : 'blackhole' };
}

/** Starts the helper in the member's namespace and waits until its rules are in (or says why not). */
export async function impair(runtime: LabRuntime, c: LabMemberContainer, kind: ImpairmentKind, percent: number): Promise<string> {
  if (c.state !== 'running') throw new UserError(`${c.member} is ${c.state}: only a running member's network can be impaired`, { hint: `\`etcd-lab start ${c.member}\` first`, exitCode: ExitCode.refused });
  const existing = (await impairments(runtime)).filter((h) => impairmentOf(h).member === c.member);
  if (existing.length > 0) return `${c.member}: already impaired (${impairmentOf(existing[0]!).kind}); \`etcd-lab heal ${c.member}\` first to change it`;
  const name = `${runtime.name}-${c.member}-${kind}`;
  const id = await runtime.engine.runService({
    name,
    image: NETTOOLS_IMAGE,
    args: ['sh', '-c', impairmentScript(kind, percent)],
    network: `container:${c.id}`,
    capAdd: ['NET_ADMIN'],
    labels: { [LABEL.lab]: runtime.name, [LABEL.role]: 'impairment' satisfies Role, [LABEL.member]: c.member, [LABEL.owner]: runtime.lab.owner, [KIND_LABEL]: kind },
  });
  for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const output = await logsOf(runtime, id);
    if (output.includes(READY_LINE)) return describeImpairment(c.member, kind, percent);
    const [helper] = (await impairments(runtime)).filter((h) => h.id === id);
    if (!helper || helper.state !== 'running' || Date.now() > deadline) {
      await runtime.engine.removeContainer(id, 0).catch(() => {});
      throw new UserError(`could not impair ${c.member}'s network: ${output.trim().split('\n').at(-1) || `its helper ${helper ? helper.state : 'is gone'}`}`, {
        hint: 'the helper runs iptables in the member\'s network namespace (NET_ADMIN); its kernel needs the iptables "statistic" match for loss',
        exitCode: ExitCode.refused,
      });
    }
  }
}

/** Stops a helper (SIGTERM: it takes its rules out) and removes it. */
export async function unimpair(runtime: LabRuntime, helper: ContainerInfo): Promise<string> {
  const { member, kind } = impairmentOf(helper);
  await runtime.engine.removeContainer(helper.id, 5);
  return `${member}: ${kind === 'loss' ? 'no more packet loss' : 'hears its peers again'}`;
}

async function logsOf(runtime: LabRuntime, id: string): Promise<string> {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  await runtime.engine.logs(id, { follow: false, stdout: sink, stderr: sink }).catch(() => {});
  return text;
}
