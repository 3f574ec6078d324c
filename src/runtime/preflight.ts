// Checks before `up` changes anything, each failure with its fix.
import { createServer } from 'node:net';
import { UserError } from '../errors.js';
import { parseSubnet, subnetsOverlap, type Ipv4Subnet } from '../config/network.js';
import { LABEL } from '../config/topology.js';
import type { NetworkInfo } from '../engine/engine.js';
import type { LabRuntime } from './lab.js';
import { ExitCode } from '../exit-codes.js';

/** Resolves true when nothing listens on address:port (we could bind it ourselves). */
export function portIsFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(false);
      else reject(error);
    });
    server.listen({ port, host: address, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export function overlappingNetworks(ours: Ipv4Subnet, networks: NetworkInfo[], labName: string): { name: string; subnet: string }[] {
  const found: { name: string; subnet: string }[] = [];
  for (const n of networks) {
    if (n.labels[LABEL.lab] === labName) continue;
    for (const s of n.subnets) {
      const theirs = parseSubnet(s);
      if (typeof theirs !== 'string' && subnetsOverlap(ours, theirs)) found.push({ name: n.name, subnet: s });
    }
  }
  return found;
}

export async function checkNetwork(runtime: LabRuntime): Promise<void> {
  const { spec } = runtime.lab;
  const all = await runtime.allNetworks();
  const clash = overlappingNetworks(runtime.topology.subnet, all, spec.name);
  if (clash.length > 0) {
    const list = clash.map((c) => `"${c.name}" (${c.subnet})`).join(', ');
    throw new UserError(`the lab subnet ${spec.network.subnet} overlaps Docker network ${list}`, {
      hint: `choose another private subnet: network.subnet in etcd-lab.yaml, or --subnet 10.80.0.0/24 for this run (or remove that network: docker network rm ${clash[0]!.name})`,
      exitCode: ExitCode.refused,
    });
  }
  const sameName = all.find((n) => n.name === runtime.topology.network);
  if (sameName && sameName.labels[LABEL.lab] !== spec.name) {
    throw new UserError(`a Docker network named "${sameName.name}" already exists and is not this lab's`, {
      hint: 'give the lab another name (name: in etcd-lab.yaml, or --name), or remove that network',
      exitCode: ExitCode.refused,
    });
  }
  if (sameName && !sameName.subnets.includes(spec.network.subnet)) {
    throw new UserError(`the lab's network exists with subnet ${sameName.subnets.join(', ')}, but the spec asks for ${spec.network.subnet}`, {
      hint: 'run `etcd-lab down` first (data volumes are kept), then `etcd-lab up` again',
      exitCode: ExitCode.refused,
    });
  }
}

export async function checkPorts(runtime: LabRuntime, heldByLab: Set<number>): Promise<void> {
  const { local } = runtime.lab;
  const wanted: [number, string, string][] = [
    [local.clientPort, 'client', 'ETCD_LAB_CLIENT_PORT=12379 in .env, or --client-port 12379'],
    [local.statsPort, 'stats', 'ETCD_LAB_STATS_PORT=18404 in .env, or --stats-port 18404'],
  ];
  for (const [port, what, fix] of wanted) {
    if (heldByLab.has(port)) continue;
    let free: boolean;
    try {
      free = await portIsFree(local.bindAddress, port);
    } catch (error) {
      throw new UserError(`cannot listen on ${local.bindAddress}:${port}: ${(error as Error).message}`, {
        hint: 'is the bind address one of this machine\'s? (ETCD_LAB_BIND_ADDRESS / --bind-address; 127.0.0.1 is the default)',
        exitCode: ExitCode.refused,
      });
    }
    if (!free) {
      throw new UserError(`the ${what} port ${local.bindAddress}:${port} is already in use`, {
        hint: `stop what holds it (another etcd? \`lsof -i :${port}\`), or choose another port for yourself: ${fix}`,
        exitCode: ExitCode.refused,
      });
    }
  }
}

/** Refuses a member count that differs from the data the lab already has. */
export function checkMembership(runtime: LabRuntime, volumes: string[]): void {
  const { spec } = runtime.lab;
  const expected = runtime.topology.members.map((m) => m.volume);
  if (volumes.length === 0) return;
  const extra = volumes.filter((v) => !expected.includes(v));
  const missing = expected.filter((v) => !volumes.includes(v));
  if (extra.length === 0 && missing.length === 0) return;
  throw new UserError(
    `lab "${spec.name}" already holds data for ${volumes.length} member${volumes.length === 1 ? '' : 's'}, but the spec asks for ${spec.members}`,
    {
      hint:
        'etcd-lab will not change the membership of an existing cluster by wiping it. Either keep the member count as it was, ' +
        `or start it as it was (\`etcd-lab up --members ${volumes.length}\`) and change the count with \`etcd-lab scale ${spec.members}\` (one member at a time, as etcd does it), ` +
        'or start over with `etcd-lab down --volumes` (this deletes the data) and `etcd-lab up`.',
      exitCode: ExitCode.refused,
    },
  );
}
