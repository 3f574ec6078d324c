// Network impairments of one member's peer traffic (port 2380; its client port is left alone):
// random packet loss, and a one-way blackhole. No netem here (kernels without it are common), so
// iptables: a helper container in the member's own network namespace adds the rules when it starts
// and removes them when it is stopped (SIGTERM). The fault lasts exactly as long as the helper runs,
// and the helper carries the lab's labels and its member's container id: `heal`, `check`'s clean-up
// and `down` find it like any of the lab's containers, and one whose member has since been
// restarted or replaced (a fresh namespace, without the rules) is known to hold nothing.
import { Writable } from 'node:stream';
import { ETCD_PEER_PORT, LABEL, type Role } from '../config/topology.js';
import { UserError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { ContainerInfo } from './engine.js';
import { NETTOOLS_IMAGE } from './images.js';
import type { LabMemberContainer, LabRuntime } from './lab.js';

export type ImpairmentKind = 'loss' | 'blackhole';

/** The labels that say which impairment a helper holds, and in which member container's namespace. */
const KIND_LABEL = 'io.etcd-lab.impairment';
const TARGET_LABEL = 'io.etcd-lab.impaired-container';
const READY_LINE = 'etcd-lab: impaired';

/**
 * The largest IPv4 packet that carries no TCP payload here: 20 bytes of IP, at most 40 of TCP (a
 * SYN's options). A blackhole drops only larger packets: what peers *say* to the member, not the
 * acknowledgements of what it says to them.
 */
const HEADERS_ONLY = 60;

/**
 * The helper's script: the rules in chains of their own (so removing them touches nothing else),
 * removed again on SIGTERM — the trap set before any rule, leftovers of a helper that died cleared
 * first. `loss`: each peer packet in and out dropped with probability p (TCP retransmits: raft sees
 * delay and stalls, rarely a lost stream). `blackhole`, one way: every peer packet coming in that
 * carries data is dropped, acknowledgements pass, so the member's own messages still reach its peers
 * (on the streams it already has) while it hears nothing from them.
 */
export function impairmentScript(kind: ImpairmentKind, percent: number): string {
  const peer = (chain: string, match: string) => ['--dport', '--sport'].map((port) => `iptables -A ${chain} -p tcp ${port} ${ETCD_PEER_PORT} ${match} -j DROP`);
  const random = `-m statistic --mode random --probability ${(percent / 100).toFixed(4)}`;
  const rules = kind === 'loss' ? [...peer('ETCD_LAB_IN', random), ...peer('ETCD_LAB_OUT', random)] : peer('ETCD_LAB_IN', `-m length --length ${HEADERS_ONLY + 1}:65535`);
  const clear = 'iptables -D INPUT -j ETCD_LAB_IN; iptables -D OUTPUT -j ETCD_LAB_OUT; iptables -F ETCD_LAB_IN; iptables -F ETCD_LAB_OUT; iptables -X ETCD_LAB_IN; iptables -X ETCD_LAB_OUT';
  return [
    `undo() { set +e; ${clear}; exit 0; }`,
    'trap undo TERM INT',
    `{ ${clear}; } 2>/dev/null || true`,
    'set -e',
    'iptables -N ETCD_LAB_IN',
    'iptables -N ETCD_LAB_OUT',
    ...rules,
    'iptables -I INPUT -j ETCD_LAB_IN',
    'iptables -I OUTPUT -j ETCD_LAB_OUT',
    `echo '${READY_LINE}'`,
    'sleep infinity & wait $!',
  ].join('\n');
}

export function describeImpairment(member: string, kind: ImpairmentKind, percent: number): string {
  return kind === 'loss'
    ? `${member}: ${percent}% of its peer packets dropped, both ways (clients still reach it)`
    : `${member}: hears nothing from its peers, one way (what they send it is dropped; what it sends still reaches them, and clients still reach it)`;
}

/**
 * The lab's impairments in force: helpers running in the namespace of their member's current
 * container. Any other helper (stopped, or its member restarted or replaced since) holds no rules
 * and is removed here, so it is never counted, refused over, or left behind.
 */
export async function impairments(runtime: LabRuntime): Promise<ContainerInfo[]> {
  const all = await runtime.containers();
  const helpers = all.filter((c) => c.labels[LABEL.role] === ('impairment' satisfies Role));
  if (helpers.length === 0) return [];
  const members = new Map(all.filter((c) => c.labels[LABEL.role] === 'etcd').map((c) => [c.labels[LABEL.member], c]));
  const live: ContainerInfo[] = [];
  for (const helper of helpers) {
    const member = members.get(helper.labels[LABEL.member]);
    if (helper.state === 'running' && member?.state !== 'exited' && member?.id === helper.labels[TARGET_LABEL]) live.push(helper);
    else await runtime.engine.removeContainer(helper.id, 0).catch(() => {});
  }
  return live;
}

export function impairmentOf(helper: ContainerInfo): { member: string; kind: ImpairmentKind } {
  return { member: helper.labels[LABEL.member] ?? '', kind: helper.labels[KIND_LABEL] === 'loss' ? 'loss' : 'blackhole' };
}

/** Starts the helper in the member's namespace and waits until its rules are in (or says why not). */
export async function impair(runtime: LabRuntime, c: LabMemberContainer, kind: ImpairmentKind, percent: number): Promise<string> {
  if (c.state !== 'running') throw new UserError(`${c.member} is ${c.state}: only a running member's network can be impaired`, { hint: `\`etcd-lab start ${c.member}\` first`, exitCode: ExitCode.refused });
  const existing = (await impairments(runtime)).filter((h) => impairmentOf(h).member === c.member);
  if (existing.length > 0) {
    throw new UserError(`${c.member} is already impaired (${impairmentOf(existing[0]!).kind})`, { hint: `\`etcd-lab heal ${c.member}\` first, then impair it anew`, exitCode: ExitCode.refused });
  }
  const name = `${runtime.name}-${c.member}-${kind}`;
  const id = await runtime.engine.runService({
    name,
    image: NETTOOLS_IMAGE,
    args: ['sh', '-c', impairmentScript(kind, percent)],
    network: `container:${c.id}`,
    capAdd: ['NET_ADMIN'],
    labels: { [LABEL.lab]: runtime.name, [LABEL.role]: 'impairment' satisfies Role, [LABEL.member]: c.member, [LABEL.owner]: runtime.lab.owner, [KIND_LABEL]: kind, [TARGET_LABEL]: c.id },
  });
  for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const output = await logsOf(runtime, id);
    if (output.includes(READY_LINE)) return describeImpairment(c.member, kind, percent);
    const [helper] = (await impairments(runtime)).filter((h) => h.id === id);
    if (!helper || helper.state !== 'running' || Date.now() > deadline) {
      // With a grace period: a helper that is still running takes out what rules it added.
      await runtime.engine.removeContainer(id, 5).catch(() => {});
      throw new UserError(`could not impair ${c.member}'s network: ${output.trim().split('\n').at(-1) || `its helper ${helper ? helper.state : 'is gone'}`}`, {
        hint: 'the helper runs iptables (nf_tables) in the member\'s network namespace with NET_ADMIN; `loss` needs the kernel\'s "statistic" match and `blackhole` its "length" match',
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
