// etcd-lab as a team uses it: packed (`npm pack`), installed into an empty git repository of their
// own (`npm i -D ./etcd-lab-x.y.z.tgz`), and run from there with npx. Proves the package holds every
// file the commands need, and that nothing secret can be staged there.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, freePorts, labResources, removeTestLabs, skipE2E, uniqueLab, type CliResult } from './lab-fixture.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const REAL_KIND = ['/usr/bin/kind', '/usr/local/bin/kind'].find((p) => existsSync(p));

function sh(command: string, args: string[], cwd: string, env: Record<string, string> = {}, timeout = 180_000): Promise<CliResult> {
  return new Promise((resolve) =>
    execFile(command, args, { cwd, env: cliEnv(env), timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe.skipIf(skipE2E)('installed as a package in a team\'s own repository', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'elt-package-'));
  const repo = join(scratch, 'team-repo');
  const { name, subnet } = uniqueLab('pkg');
  const kindNetwork = `${name}-kind`;
  const npx = (args: string[], env: Record<string, string> = {}) => sh('npx', ['--no', '--', 'etcd-lab', ...args], repo, env);
  const git = (args: string[]) => sh('git', args, repo);

  beforeAll(async () => {
    // The tarball a user would get: what package.json's `files` ships, with dist/ as `make test` built it.
    const packed = await sh('npm', ['pack', '--ignore-scripts', '--pack-destination', scratch], REPO);
    expect(packed).toExitWith(0);
    const tarball = join(scratch, readdirSync(scratch).find((f) => f.endsWith('.tgz'))!);
    expect(await sh('mkdir', ['-p', repo], scratch)).toExitWith(0);
    expect(await git(['init', '--quiet'])).toExitWith(0);
    writeFileSync(join(repo, '.gitignore'), 'node_modules/\n'); // the team's own, as any Node repository has
    writeFileSync(join(repo, 'package.json'), `${JSON.stringify({ name: 'team-repo', private: true }, null, 2)}\n`);
    const install = await sh('npm', ['install', '--save-dev', '--prefer-offline', '--no-audit', '--no-fund', tarball], repo, {}, 300_000);
    expect(install).toExitWith(0);
  }, 400_000);

  afterAll(async () => {
    await removeTestLabs(name);
    const docker = new Docker();
    for (const n of await docker.listNetworks({ filters: { name: [kindNetwork] } })) if (n.Name === kindNetwork) await docker.getNetwork(n.Id).remove().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  });

  it('--help answers from the installed package, listing every command', async () => {
    const r = await npx(['--help']);
    expect(r).toExitWith(0);
    for (const command of ['init', 'up', 'down', 'status', 'kind', 'check', 'setup-host']) expect(r.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('init writes the spec and says what to commit', async () => {
    const r = await npx(['init']);
    expect(r).toExitWith(0);
    expect(r.stdout).toMatch(/commit etcd-lab\.yaml/);
    // Editors find the schema in the installed package, by a path that is the same for every teammate.
    expect(readFileSync(join(repo, 'etcd-lab.yaml'), 'utf8')).toMatch(/^# yaml-language-server: \$schema=\.\/node_modules\/etcd-lab\/lab-templates\/etcd-lab\.schema\.json\n/);
    expect(existsSync(join(repo, 'node_modules/etcd-lab/lab-templates/etcd-lab.schema.json'))).toBe(true);
    // This teammate's lab: its own name and subnet (so it runs beside others here), and ports in .env.
    const spec = readFileSync(join(repo, 'etcd-lab.yaml'), 'utf8').replace(/^name: etcd-lab$/m, `name: ${name}`).replace(/^ {2}subnet: 10\.79\.0\.0\/24$/m, `  subnet: ${subnet}`);
    writeFileSync(join(repo, 'etcd-lab.yaml'), spec);
    const [clientPort, statsPort] = await freePorts(2);
    writeFileSync(join(repo, '.env'), `ETCD_LAB_CLIENT_PORT=${clientPort}\nETCD_LAB_STATS_PORT=${statsPort}\n`);
  });

  it('setup-host runs the set-up script shipped in the package', async () => {
    const r = await npx(['setup-host']);
    expect(r).toExitWith(0);
    expect(r.stdout).toMatch(/setup-host: Docker Compose version/);
  });

  it('up brings the lab up from there (templates and image Dockerfiles come from the package)', async () => {
    const r = await npx(['up']);
    expect(r).toExitWith(0);
    expect(r.stdout).toMatch(new RegExp(`lab ${name} is ready`));
    const status = await npx(['status', '--json']);
    expect(status).toExitWith(0);
    expect((JSON.parse(status.stdout) as { quorum: { healthy: number } }).quorum.healthy).toBe(3);
  });

  it('kind gets as far as this machine allows: up to the node image, with the real kind binary', async () => {
    expect(REAL_KIND, 'the kind binary is not installed: etcd-lab setup-host --kind').toBeDefined();
    const r = await npx(['kind'], { KIND_EXPERIMENTAL_DOCKER_NETWORK: kindNetwork });
    if (r.code === 0) {
      // A machine that can pull kindest/node gets a real cluster: remove it again.
      expect(await npx(['kind', '--delete', '--purge', '--yes'])).toExitWith(0);
    } else {
      expect(r).toExitWith(6);
      expect(r.stderr).toMatch(/kind could not get its node image .*: this machine cannot pull it/);
      expect(r.stderr).toMatch(/everything before it is verified/);
    }
  });

  it('git add -A stages the team\'s own files and etcd-lab.yaml: no generated file, no .env, no password', async () => {
    const r = await git(['add', '--all', '--dry-run']);
    expect(r).toExitWith(0);
    const staged = r.stdout.trim().split('\n').map((l) => l.replace(/^add '(.*)'$/, '$1')).sort();
    expect(staged).toEqual(['.gitignore', 'etcd-lab.yaml', 'package-lock.json', 'package.json']);
    const password = /ETCD_LAB_STATS_PASSWORD=(\S+)/.exec(readFileSync(join(repo, 'generated/.env'), 'utf8'))![1]!;
    for (const file of staged) expect(readFileSync(join(repo, file), 'utf8')).not.toContain(password);
  });

  it('in TLS mode too: keys stay in generated/pki, and git still stages none of them', async () => {
    expect(await npx(['down', '--volumes', '--yes'])).toExitWith(0);
    writeFileSync(join(repo, 'etcd-lab.yaml'), readFileSync(join(repo, 'etcd-lab.yaml'), 'utf8').replace(/^ {2}enabled: false/m, '  enabled: true'));
    const r = await npx(['up']);
    expect(r).toExitWith(0);
    expect(existsSync(join(repo, 'generated/pki/admin.key'))).toBe(true);
    const staged = (await git(['add', '--all', '--dry-run'])).stdout.trim().split('\n').map((l) => l.replace(/^add '(.*)'$/, '$1')).sort();
    expect(staged).toEqual(['.gitignore', 'etcd-lab.yaml', 'package-lock.json', 'package.json']);
    for (const file of staged) expect(readFileSync(join(repo, file), 'utf8')).not.toMatch(/PRIVATE KEY/);
  });

  it('down --volumes --yes leaves nothing behind', async () => {
    const r = await npx(['down', '--volumes', '--yes']);
    expect(r).toExitWith(0);
    expect(await labResources(name)).toEqual({ containers: [], networks: [], volumes: [] });
  });
});
