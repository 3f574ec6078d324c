// Helpers shared by the end-to-end tests: unique names, subnets and ports per test lab,
// the local images, and cleanup by label.
import { createServer } from 'node:net';
import Docker from 'dockerode';
import { LABEL } from '../../src/spec/topology.js';
import { LOCAL_IMAGES } from '../../src/runtime/images.js';

/** Every test lab's name starts with this, so leftovers can be found and removed. */
export const TEST_LAB_PREFIX = 'elt-';

export const skipE2E = process.env.ETCD_LAB_SKIP_E2E === '1';

/** Images the e2e labs run: the local ones unless the environment names others. */
export const TEST_IMAGES = {
  etcd: process.env.ETCD_LAB_TEST_ETCD_IMAGE ?? LOCAL_IMAGES.etcd,
  haproxy: process.env.ETCD_LAB_TEST_HAPROXY_IMAGE ?? LOCAL_IMAGES.haproxy,
};

let counter = 0;

/** A lab name and a private /24 unlikely to collide with anything else on the machine. */
export function uniqueLab(tag: string): { name: string; subnet: string } {
  counter += 1;
  const salt = (process.pid * 7 + counter * 13 + Date.now()) % 250;
  return {
    name: `${TEST_LAB_PREFIX}${tag}-${process.pid % 10000}-${counter}`,
    subnet: `10.${180 + ((process.pid + counter) % 60)}.${salt}.0/24`,
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Removes every container, network and volume of test labs (or of one lab). */
export async function removeTestLabs(only?: string): Promise<string[]> {
  const docker = new Docker();
  const removed: string[] = [];
  const mine = (labels: Record<string, string> | undefined) => {
    const lab = labels?.[LABEL.lab];
    return lab !== undefined && (only ? lab === only : lab.startsWith(TEST_LAB_PREFIX));
  };
  for (const c of await docker.listContainers({ all: true, filters: { label: [LABEL.lab] } })) {
    if (!mine(c.Labels)) continue;
    await docker.getContainer(c.Id).remove({ force: true, v: true });
    removed.push(`container ${c.Names[0]}`);
  }
  for (const n of await docker.listNetworks({ filters: { label: [LABEL.lab] } })) {
    if (!mine(n.Labels)) continue;
    await docker.getNetwork(n.Id).remove();
    removed.push(`network ${n.Name}`);
  }
  const { Volumes } = await docker.listVolumes({ filters: { label: [LABEL.lab] } });
  for (const v of Volumes ?? []) {
    if (!mine(v.Labels as Record<string, string>)) continue;
    await docker.getVolume(v.Name).remove();
    removed.push(`volume ${v.Name}`);
  }
  return removed;
}
