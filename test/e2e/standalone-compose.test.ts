// The generated compose file works on its own, without etcd-lab: testcontainers'
// DockerComposeEnvironment brings it up from generated/ and waits on the healthchecks it declares.
import { DockerComposeEnvironment, Wait, type StartedDockerComposeEnvironment } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import { getKey, putKey } from '../../src/protocol/etcd-http.js';
import { createTestLab, labResources, skipE2E, type TestLab } from './lab-fixture.js';

describe.skipIf(skipE2E)('docker compose -f generated/docker-compose.yml up', () => {
  let lab: TestLab | undefined;
  let environment: StartedDockerComposeEnvironment | undefined;
  afterAll(async () => {
    await environment?.down({ removeVolumes: true }).catch(() => {});
    await lab?.remove();
  });

  it('gives the same lab: healthy members and a put/get through HAProxy', async () => {
    lab = await createTestLab('compose');
    const generated = await lab.cli(['generate']);
    expect(generated).toExitWith(0);

    let env = new DockerComposeEnvironment(`${lab.dir}/generated`, 'docker-compose.yml')
      .withProjectName(lab.name)
      .withEnvironmentFile('.env')
      .withStartupTimeout(60_000);
    // testcontainers names compose containers without the project prefix: etcd1, …, haproxy.
    for (const member of ['etcd1', 'etcd2', 'etcd3']) env = env.withWaitStrategy(member, Wait.forHealthCheck());
    // HAProxy's own word that it loaded its config; reachability is proven by the put/get below.
    env = env.withWaitStrategy('haproxy', Wait.forLogMessage('Loading success.'));
    environment = await env.up();

    const endpoint = `http://127.0.0.1:${lab.clientPort}`;
    // HAProxy marks members UP a moment after they turn healthy: retry within a bounded budget.
    const deadline = Date.now() + 15_000;
    let read: string | undefined;
    while (Date.now() < deadline && read !== 'standalone') {
      try {
        await putKey(endpoint, 'e2e/standalone', 'standalone', 1000);
        read = await getKey(endpoint, 'e2e/standalone', { timeoutMs: 1000 });
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(read).toBe('standalone');
    expect((await labResources(lab.name)).containers).toHaveLength(4);

    await environment.down({ removeVolumes: true });
    environment = undefined;
    expect(await labResources(lab.name)).toEqual({ containers: [], networks: [], volumes: [] });
  });
});
