// The generated files are accepted by the real tools: `docker compose config` and `haproxy -c`.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { writeLabFiles } from '../../src/lab/generate.js';
import { run } from '../../src/engine/child-process.js';
import { loadLab } from '../../src/config/load.js';
import { HAPROXY_CONFIG_PATH } from '../../src/config/topology.js';
import { skipE2E, TEST_IMAGES, TEST_LAB_PREFIX } from './lab-fixture.js';

const FIXTURES = new URL('../fixtures/specs/', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'etcd-lab-files-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function generateFixture(fixture: string) {
  const out = join(scratch, fixture);
  const lab = loadLab({ config: join(FIXTURES, `${fixture}.yaml`), out, env: {} });
  await writeLabFiles(lab);
  return { out, lab };
}

/** Runs `haproxy -c` inside the HAProxy image on a generated cfg; returns exit code and output. */
async function haproxyCheck(cfgPath: string, env: string[]): Promise<{ code: number; output: string }> {
  const docker = new Docker();
  const container = await docker.createContainer({
    Image: TEST_IMAGES.haproxy,
    Entrypoint: ['haproxy', '-c', '-V', '-f', HAPROXY_CONFIG_PATH],
    Env: env,
    HostConfig: { Binds: [`${cfgPath}:${HAPROXY_CONFIG_PATH}:ro`] },
    Labels: { 'io.etcd-lab.lab': `${TEST_LAB_PREFIX}haproxy-check` },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
    return { code: StatusCode, output: logs };
  } finally {
    await container.remove({ force: true });
  }
}

describe.skipIf(skipE2E).each(['members-1', 'members-3', 'members-5', 'members-7', 'custom-ports'])('generated %s', (fixture) => {
  it('docker compose config accepts the compose file', async () => {
    const { out, lab } = await generateFixture(fixture);
    const { stdout } = await run('docker', ['compose', '-f', join(out, 'docker-compose.yml'), 'config', '--format', 'json'], { timeoutMs: 30_000 });
    const resolved = JSON.parse(stdout) as { services: Record<string, { ports: { published: string; host_ip: string }[] }> };
    // compose read the generated .env: the stats port is this machine's, the bind address the spec's.
    const haproxyPorts = resolved.services.haproxy!.ports.map((p) => Number(p.published));
    expect(haproxyPorts).toEqual([lab.local.clientPort, lab.local.statsPort]);
    expect(Object.keys(resolved.services)).toHaveLength(lab.spec.members + 1);
  });

  it('haproxy -c accepts haproxy.cfg', async () => {
    const { out } = await generateFixture(fixture);
    const env = readFileSync(join(out, '.env'), 'utf8').split('\n').filter((l) => l.startsWith('ETCD_LAB_STATS_'));
    const { code, output } = await haproxyCheck(join(out, 'haproxy/haproxy.cfg'), env);
    expect(output).toMatch(/Configuration file is valid/);
    expect(output).not.toMatch(/\[WARNING\]/);
    expect(code).toBe(0);
  });
});

describe.skipIf(skipE2E)('haproxy -c can fail', () => {
  it('rejects a broken config (so the check above means something)', async () => {
    const { out } = await generateFixture('members-3');
    const broken = join(out, 'broken.cfg');
    const good = readFileSync(join(out, 'haproxy/haproxy.cfg'), 'utf8');
    const text = good.replace(/balance \w+/, 'balance nonsense');
    expect(text).not.toBe(good);
    writeFileSync(broken, text);
    const { code } = await haproxyCheck(broken, ['ETCD_LAB_STATS_USER=u', 'ETCD_LAB_STATS_PASSWORD=p']);
    expect(code).not.toBe(0);
  });
});
