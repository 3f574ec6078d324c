// A running lab without Docker: files generated in `dir`, containers made by the fake engine's
// compose, a fake etcd cluster and its HAProxy answering on loopback ports. Members beyond `members`
// (up to 7) are known to the fake cluster, for scale to add.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadLab } from '../../src/config/load.js';
import { labTopology } from '../../src/config/topology.js';
import { writeLabFiles } from '../../src/lab/generate.js';
import { COMPOSE_FILE, HAPROXY_FILE } from '../../src/render/index.js';
import type { FakeEngine } from './fake-engine.js';
import { FakeCluster } from './fake-etcd.js';

export async function startFakeLab(dir: string, engine: FakeEngine, members: number): Promise<FakeCluster> {
  writeFileSync(join(dir, 'etcd-lab.yaml'), `name: fakelab\nmembers: ${members}\nnetwork:\n  subnet: 10.250.0.0/24\n`);
  const seven = labTopology({ ...loadLab({ cwd: dir, env: {} }).spec, members: 7 }).members;
  const cluster = new FakeCluster(engine, (name) => seven.find((m) => m.name === name)!.peerUrl);
  await cluster.start(seven.slice(0, members).map((m) => m.name), seven.slice(members).map((m) => m.name));
  // HAProxy's ports as the fake bound them, then the lab's files naming them.
  const { clientPort, statsPort } = await cluster.haproxy(join(dir, 'generated', HAPROXY_FILE));
  writeFileSync(join(dir, '.env'), `ETCD_LAB_CLIENT_PORT=${clientPort}\nETCD_LAB_STATS_PORT=${statsPort}\n`);
  const lab = loadLab({ cwd: dir, env: {} });
  await writeLabFiles(lab);
  await engine.compose.run(lab.spec.name, join(lab.outDir, COMPOSE_FILE), ['up', '--detach']);
  engine.calls.splice(0);
  return cluster;
}
