// Network impairments of one member's peer traffic (port 2380; its client port is left alone):
// random packet loss, a one-way blackhole, and delay. No netem here (kernels without it are common),
// so iptables, and for delay a forwarder on the path: a helper container in the member's own network
// namespace adds the rules when it starts and removes them when it is stopped (SIGTERM). The fault lasts exactly as long as the helper runs,
// and the helper carries the lab's labels and its member's container id: `heal`, `check`'s clean-up
// and `down` find it like any of the lab's containers, and one whose member has since been
// restarted or replaced (a fresh namespace, without the rules) is known to hold nothing.
import { ETCD_PEER_PORT, LABEL } from '../config/topology.js';
import { UserError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import type { ContainerInfo } from '../engine/engine.js';
import { NETTOOLS_IMAGE } from '../runtime/images.js';
import { impairmentOf, impairments, KIND_LABEL, TARGET_LABEL, type Impairment } from '../runtime/impairments.js';
import type { LabMemberContainer, LabRuntime } from '../runtime/lab.js';

const READY_LINE = 'etcd-lab: impaired';

/** The uid the delay forwarder runs as: its own connections to the peers are not redirected to itself. */
const FORWARDER_UID = 65534;
/** The forwarder's ports inside the member's namespace, one per peer. */
const FORWARDER_PORT = 23800;

/**
 * `delay`'s forwarder (Node, no dependencies): for each "port=host:port" argument it listens on
 * 127.0.0.1:port and forwards every connection to host:port, holding each chunk `ms` before passing
 * it on, both ways, in order. Ready when it writes /tmp/forwarder-ready.
 */
const FORWARDER = `
const net = require('net');
const fs = require('fs');
const [ms, ...routes] = process.argv.slice(1);
const delay = Number(ms);
let listening = 0;
const pass = (from, to) => {
  from.on('data', (chunk) => setTimeout(() => to.write(chunk), delay));
  from.on('end', () => setTimeout(() => to.end(), delay));
  from.on('error', () => to.destroy());
  from.on('close', () => setTimeout(() => to.destroy(), delay));
};
for (const route of routes) {
  const [port, target] = route.split('=');
  const [host, targetPort] = target.split(':');
  net.createServer((client) => {
    const upstream = net.connect(Number(targetPort), host);
    pass(client, upstream);
    pass(upstream, client);
  }).listen(Number(port), '127.0.0.1', () => {
    if (++listening === routes.length) fs.writeFileSync('/tmp/forwarder-ready', '');
  });
}
`;

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
export function impairmentScript(impairment: Impairment, peers: string[] = []): string {
  const peer = (chain: string, match: string) => ['--dport', '--sport'].map((port) => `iptables -A ${chain} -p tcp ${port} ${ETCD_PEER_PORT} ${match} -j DROP`);
  const clear = [
    'iptables -D INPUT -j ETCD_LAB_IN; iptables -D OUTPUT -j ETCD_LAB_OUT; iptables -F ETCD_LAB_IN; iptables -F ETCD_LAB_OUT; iptables -X ETCD_LAB_IN; iptables -X ETCD_LAB_OUT',
    ...(impairment.kind === 'delay' ? ['iptables -t nat -D OUTPUT -j ETCD_LAB_NAT; iptables -t nat -F ETCD_LAB_NAT; iptables -t nat -X ETCD_LAB_NAT'] : []),
  ].join('; ');
  let rules: string[];
  let forwarder: string[] = [];
  if (impairment.kind === 'loss') {
    const random = `-m statistic --mode random --probability ${(impairment.percent / 100).toFixed(4)}`;
    rules = [...peer('ETCD_LAB_IN', random), ...peer('ETCD_LAB_OUT', random)];
  } else if (impairment.kind === 'blackhole') {
    rules = peer('ETCD_LAB_IN', `-m length --length ${HEADERS_ONLY + 1}:65535`);
  } else {
    // The member's own connections to its peers go through the forwarder (new ones: redirected;
    // those it had: reset, so that it dials again). The forwarder's own connections are let through.
    const routes = peers.map((address, i) => `${FORWARDER_PORT + i}=${address}:${ETCD_PEER_PORT}`);
    forwarder = [
      'rm -f /tmp/forwarder-ready',
      `setpriv --reuid=${FORWARDER_UID} --regid=${FORWARDER_UID} --clear-groups node -e "$ETCD_LAB_FORWARDER" ${impairment.ms} ${routes.join(' ')} &`,
      'forwarder=$!',
      'for i in $(seq 100); do [ -e /tmp/forwarder-ready ] && break; kill -0 $forwarder; sleep 0.1; done',
      '[ -e /tmp/forwarder-ready ]',
      'iptables -t nat -N ETCD_LAB_NAT',
      ...peers.map((address, i) => `iptables -t nat -A ETCD_LAB_NAT -p tcp -d ${address} --dport ${ETCD_PEER_PORT} -m owner ! --uid-owner ${FORWARDER_UID} -j REDIRECT --to-ports ${FORWARDER_PORT + i}`),
      'iptables -t nat -I OUTPUT -j ETCD_LAB_NAT',
    ];
    rules = [`iptables -A ETCD_LAB_OUT -p tcp --dport ${ETCD_PEER_PORT} -m owner ! --uid-owner ${FORWARDER_UID} -m conntrack --ctstate ESTABLISHED -j REJECT --reject-with tcp-reset`];
  }
  return [
    `undo() { set +e; ${clear}; exit 0; }`,
    'trap undo TERM INT',
    `{ ${clear}; } 2>/dev/null || true`,
    'set -e',
    ...forwarder,
    'iptables -N ETCD_LAB_IN',
    'iptables -N ETCD_LAB_OUT',
    ...rules,
    'iptables -I INPUT -j ETCD_LAB_IN',
    'iptables -I OUTPUT -j ETCD_LAB_OUT',
    `echo '${READY_LINE}'`,
    'sleep infinity & wait $!',
  ].join('\n');
}

export function describeImpairment(member: string, impairment: Impairment): string {
  switch (impairment.kind) {
    case 'loss':
      return `${member}: ${impairment.percent}% of its peer packets dropped, both ways (clients still reach it)`;
    case 'blackhole':
      return `${member}: hears nothing from its peers, one way (what they send it is dropped; what it sends still reaches them, and clients still reach it)`;
    case 'delay':
      return `${member}: its own connections to its peers held ${impairment.ms} ms each way (what its peers stream to it arrives late; clients still reach it)`;
  }
}

/** Starts the helper in the member's namespace and waits until its rules are in (or says why not). */
export async function impair(runtime: LabRuntime, c: LabMemberContainer, impairment: Impairment): Promise<string> {
  const { kind } = impairment;
  if (c.state !== 'running') throw new UserError(`${c.member} is ${c.state}: only a running member's network can be impaired`, { hint: `\`etcd-lab start ${c.member}\` first`, exitCode: ExitCode.refused });
  const existing = (await impairments(runtime)).filter((h) => impairmentOf(h).member === c.member);
  if (existing.length > 0) {
    throw new UserError(`${c.member} is already impaired (${impairmentOf(existing[0]!).kind})`, { hint: `\`etcd-lab heal ${c.member}\` first, then impair it anew`, exitCode: ExitCode.refused });
  }
  const name = `${runtime.name}-${c.member}-${kind}`;
  const peers = runtime.topology.members.filter((m) => m.name !== c.member).map((m) => m.address);
  const id = await runtime.runContainer('impairment', {
    name,
    image: NETTOOLS_IMAGE,
    args: ['sh', '-c', impairmentScript(impairment, peers)],
    ...(kind === 'delay' ? { env: [`ETCD_LAB_FORWARDER=${FORWARDER}`] } : {}),
    network: `container:${c.id}`,
    capAdd: ['NET_ADMIN'],
    labels: { [LABEL.member]: c.member, [KIND_LABEL]: kind, [TARGET_LABEL]: c.id },
  });
  for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const output = await runtime.output({ id });
    if (output.includes(READY_LINE)) return describeImpairment(c.member, impairment);
    const [helper] = (await impairments(runtime)).filter((h) => h.id === id);
    if (!helper || helper.state !== 'running' || Date.now() > deadline) {
      // With a grace period: a helper that is still running takes out what rules it added.
      await runtime.removeContainer({ id }, 5).catch(() => {});
      throw new UserError(`could not impair ${c.member}'s network: ${output.trim().split('\n').at(-1) || `its helper ${helper ? helper.state : 'is gone'}`}`, {
        hint: 'the helper runs iptables (nf_tables) in the member\'s network namespace with NET_ADMIN; `loss` needs the kernel\'s "statistic" match, `blackhole` its "length" match, `delay` its "owner" match, NAT and REJECT',
        exitCode: ExitCode.refused,
      });
    }
  }
}

/** Stops a helper (SIGTERM: it takes its rules out) and removes it. */
export async function unimpair(runtime: LabRuntime, helper: ContainerInfo): Promise<string> {
  const { member, kind } = impairmentOf(helper);
  await runtime.removeContainer(helper, 5);
  return `${member}: ${{ loss: 'no more packet loss', blackhole: 'hears its peers again', delay: 'no more delay' }[kind]}`;
}
