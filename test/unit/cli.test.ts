// The CLI in a scratch directory: in this process against source (run-cli.ts), and for what only
// a real process shows (the bin starts; files land on disk as a user's run leaves them) as a child
// process running bin/etcd-lab.js, as a user would.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HistoryBuilder } from './history-builder.js';
import { runCli } from './run-cli.js';
import { finish } from '../../src/commands/shared.js';

const BIN = fileURLToPath(new URL('../../bin/etcd-lab.js', import.meta.url));
let dir: string;

/** bin/etcd-lab.js as a child process. */
function cliProcess(...args: string[]) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('ETCD_LAB_')) delete env[key];
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8', env: { ...env, CI: 'true' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cliWith = (env: Record<string, string>, ...args: string[]) => runCli(args, { cwd: dir, env });
const cli = (...args: string[]) => cliWith({}, ...args);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'etcd-lab-cli-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('etcd-lab CLI', () => {
  const commands = ['init', 'generate', 'up', 'down', 'status', 'logs', 'kill', 'stop', 'start', 'pause', 'unpause', 'partition', 'heal', 'check', 'snapshot', 'defrag', 'alarm', 'member', 'leader', 'scale', 'upgrade', 'kind', 'export', 'images', 'setup-host', 'env', 'completion'];
  const subcommands = [['images', 'build'], ['snapshot', 'save'], ['snapshot', 'status'], ['snapshot', 'restore'], ['snapshot', 'rollback'], ['alarm', 'list'], ['alarm', 'disarm'], ['alarm', 'recover'], ['member', 'list'], ['member', 'replace'], ['export', 'hosts'], ['export', 'swarm']];
  it.each([[], ...commands.map((c) => [c]), ...subcommands])('--help works for %j', async (...args) => {
    const r = await cli(...args, '--help');
    expect(r).toExitWith(0);
    expect(r.stdout).toMatch(/^Usage: etcd-lab/);
  });

  it('generate --members 4 refuses with the reason and writes nothing', async () => {
    const r = await cli('generate', '--members', '4');
    expect(r).toExitWith(2);
    expect(r.stderr).toMatch(/members \(from --members\): must be odd/);
    expect(r.stderr).toMatch(/2:2 split leaves neither side a quorum/);
    expect(existsSync(join(dir, 'generated'))).toBe(false);
  });

  it('init points editors at the shipped JSON Schema', async () => {
    expect(await cli('init')).toExitWith(0);
    const first = readFileSync(join(dir, 'etcd-lab.yaml'), 'utf8').split('\n')[0]!;
    const path = /^# yaml-language-server: \$schema=(\S+)$/.exec(first)?.[1];
    expect(path, first).toBeDefined();
    expect(JSON.parse(readFileSync(join(dir, path!), 'utf8'))).toMatchObject({ title: 'etcd-lab.yaml', type: 'object' });
  });

  it('as a process: init then generate --members 5 writes the files, the .env private', () => {
    expect(cliProcess('init')).toExitWith(0);
    expect(cliProcess('init')).toExitWith(1); // refuses to overwrite
    const r = cliProcess('generate', '--members', '5', '--client-port', '23790');
    expect(r).toExitWith(0);
    for (const f of ['docker-compose.yml', 'haproxy/haproxy.cfg', 'kind-config.yaml', '.env']) expect(existsSync(join(dir, 'generated', f))).toBe(true);
    const compose = parse(readFileSync(join(dir, 'generated/docker-compose.yml'), 'utf8')) as { services: Record<string, unknown> };
    expect(Object.keys(compose.services)).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd5', 'haproxy']);
    expect(statSync(join(dir, 'generated/.env')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'generated/.env'), 'utf8')).toContain('ETCD_LAB_CLIENT_PORT=23790');
  });

  it('all problems of a bad file are reported at once', async () => {
    writeFileSync(join(dir, 'etcd-lab.yaml'), 'members: 2\nnetwork:\n  subnet: 111.0.0.0/24\nhaproxy:\n  statsport: 1\n');
    const r = await cli('generate');
    expect(r).toExitWith(2);
    expect(r.stderr).toMatch(/3 problems/);
    expect(r.stderr).toMatch(/did you mean statsPort/);
  });

  it('generate --json prints the result for scripts', async () => {
    const r = await cli('generate', '--json', '--out', 'elsewhere');
    expect(r).toExitWith(0);
    const result = JSON.parse(r.stdout) as { files: string[]; outDir: string; spec: { members: number } };
    expect(result.files).toContain('docker-compose.yml');
    expect(result.outDir).toBe(join(dir, 'elsewhere'));
    expect(result.spec.members).toBe(3);
  });

  it('the per-person .env beside the spec sets host ports, regeneration keeps the password', async () => {
    writeFileSync(join(dir, '.env'), 'ETCD_LAB_STATS_PORT=18404\n');
    expect(await cli('generate')).toExitWith(0);
    const first = readFileSync(join(dir, 'generated/.env'), 'utf8');
    expect(first).toContain('ETCD_LAB_STATS_PORT=18404');
    expect(await cli('generate')).toExitWith(0);
    expect(readFileSync(join(dir, 'generated/.env'), 'utf8')).toBe(first);
  });

  it('as a process: bin/etcd-lab.js starts, and its help lists every command', () => {
    const r = cliProcess('--help');
    expect(r).toExitWith(0);
    for (const c of commands) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
  });

  it('as a process: help piped into a reader that is gone (`| head -1`, `| true`) ends quietly, exit 0', () => {
    // `true` reads nothing and exits before node writes: the write meets a closed pipe every time.
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', `node ${JSON.stringify(BIN)} apiserver --help | true`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('commands that read a lab refuse bad flags before touching Docker', async () => {
    const r = await cli('up', '--members', '2', '--subnet', '8.8.8.0/24');
    expect(r).toExitWith(2);
    expect(r.stderr).toMatch(/2 problems/);
  });

  describe('file-system problems are the user\'s to fix, with the fix, never "a bug"', () => {
    it.each([
      ['etcd-lab.yaml is a directory', () => mkdirSync(join(dir, 'etcd-lab.yaml')), /the lab spec .*etcd-lab\.yaml is a directory, not a regular file/, /move that out of the way, or point --config/],
      ['--config names a directory', () => mkdirSync(join(dir, 'specs')), /the lab spec .*specs is a directory/, /point --config at your etcd-lab\.yaml/, ['--config', 'specs']],
      ['the .env beside the spec is a directory', () => mkdirSync(join(dir, '.env')), /the per-person settings file .*\.env is a directory/, /NAME=value/],
      ['generated/ is a file', () => writeFileSync(join(dir, 'generated'), 'oops'), /the generated settings file .*generated\/\.env cannot be reached/, /choose another --out/],
    ] as [string, () => void, RegExp, RegExp, string[]?][])('%s', async (_what, arrange, message, fix, extra = []) => {
      arrange();
      for (const command of ['generate', 'up', 'status']) {
        const r = await cli(command, ...extra);
        expect(r).toExitWith(2, command);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).toMatch(fix);
        expect(r.stderr).not.toMatch(/bug in etcd-lab/);
      }
    });

    it('generated/ that cannot be written as a directory', async () => {
      mkdirSync(join(dir, 'generated'));
      mkdirSync(join(dir, 'generated', 'docker-compose.yml'));
      const r = await cli('generate');
      expect(r).toExitWith(2);
      expect(r.stderr).toMatch(/the directory for generated files .*generated .*(is a directory|exists as something else)/);
      expect(r.stderr).toMatch(/choose another with --out/);
    });
  });

  describe('a bind address other than loopback', () => {
    it.each([
      [['--bind-address', '0.0.0.0'], {}, /--bind-address: .*every network interface of this machine/],
      [[], { ETCD_LAB_BIND_ADDRESS: '10.1.2.3' }, /\$ETCD_LAB_BIND_ADDRESS: .*10\.1\.2\.3, reachable from other machines/],
    ] as [string[], Record<string, string>, RegExp][])('%j %j: a clear warning that names TLS as the way', async (args, env, where) => {
      const r = await cliWith(env, 'generate', ...args);
      expect(r).toExitWith(0);
      expect(r.stderr).toMatch(where);
      expect(r.stderr).toMatch(/no TLS and no authentication/);
      expect(r.stderr).toMatch(/set tls\.enabled: true .*TLS with client certificates/);
    });

    it('with TLS on, the same address is no warning: client certificates guard it', async () => {
      writeFileSync(join(dir, 'etcd-lab.yaml'), 'tls:\n  enabled: true\n');
      const r = await cli('generate', '--bind-address', '0.0.0.0');
      expect(r).toExitWith(0);
      expect(r.stderr).not.toMatch(/no TLS and no authentication/);
    });

    it('loopback other than 127.0.0.1 is no warning', async () => {
      const r = await cli('generate', '--bind-address', '127.0.0.2');
      expect(r).toExitWith(0);
      expect(r.stderr).not.toMatch(/listen on|no TLS/);
    });
  });

  describe('in a team\'s own git repository', () => {
    const git = (...args: string[]) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8' });
    const stageable = () => git('add', '--all', '--dry-run').stdout.trim().split('\n').filter(Boolean).map((l) => l.replace(/^add '(.*)'$/, '$1')).sort();

    it('after init, a per-person .env and generate, `git add -A` stages the spec and .gitignore only', async () => {
      expect(git('init', '--quiet').status).toBe(0);
      writeFileSync(join(dir, 'app.js'), '// the team\'s own code\n');
      const init = await cli('init');
      expect(init).toExitWith(0);
      expect(init.stdout).toMatch(/commit etcd-lab\.yaml/);
      expect(init.stdout).toMatch(/never commit generated\/ .* nor \.env .*; added \.env to .*\.gitignore/);
      writeFileSync(join(dir, '.env'), 'ETCD_LAB_CLIENT_PORT=12379\n');
      expect(await cli('generate')).toExitWith(0);
      expect(readFileSync(join(dir, 'generated/.env'), 'utf8')).toMatch(/ETCD_LAB_STATS_PASSWORD=\S{8,}/);
      expect(stageable()).toEqual(['.gitignore', 'app.js', 'etcd-lab.yaml']);
    });

    it('an existing .gitignore is kept and extended once; one that already ignores .env is left alone', async () => {
      expect(git('init', '--quiet').status).toBe(0);
      writeFileSync(join(dir, '.gitignore'), 'node_modules/');
      expect(await cli('init')).toExitWith(0);
      expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe("node_modules/\n# etcd-lab: each person's own ports and images; never commit\n.env\n");
      const again = await cli('init', '--force');
      expect(again.stdout).toMatch(/\.env is already ignored/);
      expect(readFileSync(join(dir, '.gitignore'), 'utf8').match(/^\.env$/gm)).toHaveLength(1);
    });

    it('a .env git would stage (a repository set up without init) is warned about', async () => {
      expect(git('init', '--quiet').status).toBe(0);
      writeFileSync(join(dir, '.env'), 'ETCD_LAB_CLIENT_PORT=12379\n');
      const r = await cli('generate');
      expect(r).toExitWith(0);
      expect(r.stderr).toMatch(/\.env is not ignored by git: a `git add -A` would commit your own ports and images/);
      writeFileSync(join(dir, '.gitignore'), '.env\n');
      expect((await cli('generate')).stderr).not.toMatch(/not ignored by git/);
    });

    it('outside a repository, init writes no .gitignore', async () => {
      expect(await cli('init')).toExitWith(0);
      expect(existsSync(join(dir, '.gitignore'))).toBe(false);
    });
  });

  describe('env', () => {
    it('TLS mode: the endpoint and the admin certificate, for bash, fish and PowerShell', async () => {
      writeFileSync(join(dir, 'etcd-lab.yaml'), 'tls:\n  enabled: true\n');
      expect(await cli('env')).toExitWith(2); // no certificates yet: says to run up
      expect(await cli('generate')).toExitWith(0);
      const bash = await cli('env');
      expect(bash).toExitWith(0);
      expect(bash.stdout).toContain("export ETCDCTL_ENDPOINTS='https://127.0.0.1:2379'");
      expect(bash.stdout).toContain(`export ETCDCTL_CERT='${join(dir, 'generated/pki/admin.crt')}'`);
      expect((await cli('env', '--shell', 'fish')).stdout).toContain(`set -gx ETCDCTL_KEY '${join(dir, 'generated/pki/admin.key')}';`);
      expect((await cli('env', '--shell', 'powershell')).stdout).toContain(`$Env:ETCDCTL_CACERT = '${join(dir, 'generated/pki/ca.crt')}'`);
      const vars = JSON.parse((await cli('env', '--json')).stdout) as Record<string, string>;
      for (const name of ['ETCDCTL_CACERT', 'ETCDCTL_CERT', 'ETCDCTL_KEY']) expect(existsSync(vars[name]!), name).toBe(true);
    });

    it('plain mode: the endpoint, and the certificate variables unset', async () => {
      const r = await cli('env', '--client-port', '12379');
      expect(r.stdout).toMatch(/^export ETCDCTL_ENDPOINTS='http:\/\/127\.0\.0\.1:12379'$/m);
      expect(r.stdout).toMatch(/^unset ETCDCTL_CERT$/m);
      expect((await cli('env', '--shell', 'csh')).code).not.toBe(0);
    });
  });

  it('an unknown command says so', async () => {
    const r = await cli('frobnicate');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown command/);
  });

  describe('odd input, as a new user tries it: one clear message, exit 2, nothing written', () => {
    const DOCKERLESS = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
    const nothingWritten = () => expect(readdirSync(dir).filter((f) => f !== 'etcd-lab.yaml' && f !== '.env')).toEqual([]);

    it.each([
      [['generate', '--config', '/dev/null'], /the lab spec \/dev\/null is a device, not a regular file/],
      [['generate', '--config', '.'], /is a directory, not a regular file/],
      [['generate', '--config', 'nope.yaml'], /nope\.yaml does not exist/],
      [['generate', '--bind-address', '999.1.1.1'], /--bind-address: must be an IPv4 address such as 127\.0\.0\.1 \(got "999\.1\.1\.1"\)/],
      [['generate', '--subnet', '10.079.0.0/24'], /must be an IPv4 CIDR/],
      [['generate', '--etcd-image', 'Gcr.io/Etcd:v3.5.33'], /capital letters in its repository name/],
      [['generate', '--client-port', '0'], /--client-port: must be a port number from 1 to 65535/],
      [['generate', '--client-port', '65536'], /--client-port: must be a port number from 1 to 65535/],
      [['generate', '--client-port', '8404'], /--client-port: makes the client port and the stats port both 8404/],
      [['generate', '--name', ''], /name \(from --name\): must be lowercase/],
      [['generate', '--name', 'My Lab'], /name \(from --name\): must be lowercase/],
      [['generate', '--members', '3', '--members', '5'], /--members <n>' argument '5' is invalid\. given twice/],
      [['generate', '--no-such-flag'], /unknown option/],
      [['env', '--shell', 'zsh'], /Allowed choices are bash, fish, powershell/],
      [['scale', '0'], /cannot scale to 0 members: the count must be at least 1[\s\S]*use 1, 3, 5 or 7/],
      [['scale', '4'], /cannot scale to 4 members: the count must be odd[\s\S]*2:2 split[\s\S]*use 3 or 5/],
      [['scale', '9'], /cannot scale to 9 members: the count must be at most 7/],
      [['scale', 'five'], /scale takes a member count/],
      [['up', '--timeout', '-1'], /--timeout takes a number of seconds/],
      [['up', '--timeout', '1e12'], /--timeout takes a number of seconds from more than 0 up to 86400/],
      [['upgrade', '--etcd-image', 'Etcd:v3.6'], /--etcd-image has capital letters/],
      [['snapshot', 'save', '/proc/x.db'], /the snapshot file \/proc\/x\.db cannot be made/],
      [['check', '--nemesis', 'kill,flood'], /--nemesis takes a comma-separated list of: kill, pause, partition, leader, defrag, compact, replace, loss, blackhole, delay, upgrade \(got "kill,flood"\)/],
      [['check', '--nemesis', 'kill,upgrade'], /the upgrade fault needs an image to move members to[\s\S]*--upgrade-image REF/],
      [['check', '--upgrade-image', 'etcd-lab/etcd:trixie'], /--upgrade-image is for the upgrade fault, which --nemesis does not name[\s\S]*add upgrade to --nemesis/],
      [['check', '--nemesis', 'upgrade', '--upgrade-image', 'Etcd:v3.6'], /--upgrade-image has capital letters/],
      [['check', '--faults', '-1'], /--faults takes a whole number from 0 to 1000/],
      [['check', '--clients', '0'], /--clients takes a whole number from 1 to 64/],
      [['check', '--hold', '0'], /--hold takes seconds from 0.1 to 60/],
      [['check', '--reads', 'stale'], /argument 'stale' is invalid/],
    ])('%j', async (args, message) => {
      const r = await cliWith(DOCKERLESS, ...args);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/looks like a bug|tolerates no more failures than -1|split 0:0/);
      expect(r).toExitWith(2);
      nothingWritten();
    });

    it('a .part file a killed save left behind does not block the next save to that name, and its check leaves nothing', async () => {
      mkdirSync(join(dir, 'ro'));
      writeFileSync(join(dir, 'ro', 'x.db.part'), 'left by a save that was killed');
      const r = await cliWith(DOCKERLESS, 'snapshot', 'save', join(dir, 'ro', 'x.db'));
      // Past the file checks, as far as Docker (absent here): not "exists as something else".
      expect(r).toExitWith(3);
      expect(r.stderr).toMatch(/Docker is not reachable/);
      expect(readdirSync(join(dir, 'ro'))).toEqual(['x.db.part']);
    });

    it('a spec image with capitals is refused by generate, with the lowercase one offered', async () => {
      writeFileSync(join(dir, 'etcd-lab.yaml'), 'etcd:\n  image: Quay.io/CoreOS/etcd:v3.5.33\n');
      const r = await cli('generate');
      expect(r).toExitWith(2);
      expect(r.stderr).toMatch(/etcd\.image: has capital letters[\s\S]*quay\.io\/coreos\/etcd:v3\.5\.33/);
      nothingWritten();
    });

    it('the same mistake seen by two readers counts once', async () => {
      writeFileSync(join(dir, '.env'), 'ETCD_LAB_BIND_ADDRESS=999.1.1.1\n');
      const r = await cliWith({ ETCD_LAB_BIND_ADDRESS: '999.1.1.1' }, 'generate', '--bind-address', '999.1.1.1');
      expect(r).toExitWith(2);
      expect(r.stderr).toMatch(/: 1 problem\n/);
    });

    it('a .env with a malformed line is read, with a warning naming the line', async () => {
      writeFileSync(join(dir, '.env'), '# mine\nETCD_LAB_CLIENT_PORT 23790\nETCD_LAB_STATS_PORT=8405\nETCD_LAB_CLIENT_PROT=1\n');
      const r = await cli('generate');
      expect(r).toExitWith(0);
      expect(r.stderr).toMatch(new RegExp(`${join(dir, '.env').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: is not NAME=value`));
      expect(r.stderr).toMatch(/\.env:4: ETCD_LAB_CLIENT_PROT is not a variable etcd-lab reads, so it is ignored — did you mean ETCD_LAB_CLIENT_PORT\?/);
      expect(readFileSync(join(dir, 'generated/.env'), 'utf8')).toContain('ETCD_LAB_STATS_PORT=8405');
    });
  });
});


describe('shell completion', () => {
  const complete = async (...words: string[]) => (await cli('__complete', ...words)).stdout.split('\n').filter(Boolean);

  it('completes commands, subcommands, flags and a flag’s choices', async () => {
    expect(await complete('sn')).toEqual(['snapshot']);
    expect(await complete('snapshot', '')).toEqual(['save', 'status', 'restore', 'rollback']);
    expect(await complete('up', '--ti')).toEqual(['--timeout']);
    expect(await complete('env', '--shell', '')).toEqual(['bash', 'fish', 'powershell']);
    expect(await complete('scale', '')).toEqual(['1', '3', '5', '7']);
    // Hidden: the helper itself is never offered.
    expect(await complete('')).not.toContain('__complete');
  });

  it('completes member names from the spec here (and `leader`, `haproxy` where a command takes them)', async () => {
    writeFileSync(join(dir, 'etcd-lab.yaml'), 'members: 5\n');
    expect(await complete('kill', '')).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd5', 'leader']);
    expect(await complete('logs', 'h')).toEqual(['haproxy']);
    expect(await complete('member', 'replace', 'etcd')).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd5']);
    // A spec it cannot read gives no member names, and no error.
    writeFileSync(join(dir, 'etcd-lab.yaml'), 'members: 2\n');
    const r = await cli('__complete', 'kill', '');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.trim()).toBe('leader');
  });

  it('the bash script, sourced in bash, asks etcd-lab for the candidates', () => {
    writeFileSync(join(dir, 'etcd-lab.yaml'), 'members: 3\n');
    mkdirSync(join(dir, 'bin'));
    const script = cliProcess('completion', 'bash');
    expect(script).toExitWith(0);
    writeFileSync(join(dir, 'bin', 'etcd-lab'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
    const r = spawnSync('bash', ['-c', `${script.stdout}\nCOMP_WORDS=(etcd-lab partition e); COMP_CWORD=2; _etcd_lab; printf '%s\\n' "\${COMPREPLY[@]}"`], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` },
    });
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['etcd1', 'etcd2', 'etcd3']);
  });

  it('an unknown shell is refused with the ones there are', async () => {
    const r = await cli('completion', 'tcsh');
    expect(r).toExitWith(2);
    expect(r.stderr).toMatch(/use one of bash, zsh, fish/);
  });
});

describe('check --verify: a saved history checked again, with no lab and no Docker', () => {
  const DOCKERLESS = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  it('passes a legal history, fails once a committed change is gone (exit 5), and writes the report beside it', async () => {
    const b = new HistoryBuilder();
    b.run(1, { op: 'put', key: 'k0', value: 'c1-1' }, 0, 10);
    const w = b.run(2, { op: 'put', key: 'k1', value: 'c2-1' }, 5, 15);
    b.run(1, { op: 'get', key: 'k1' }, 20, 30);
    const file = join(dir, 'history.json');
    writeFileSync(file, JSON.stringify(b.history()));
    const ok = await cliWith(DOCKERLESS, 'check', '--verify', file);
    expect(ok).toExitWith(0);
    expect(ok.stdout).toMatch(/^operations: 3 \(ok 3, failed 0, unknown outcome 0: 0 committed, 0 not\); 2 committed revisions$/m);
    expect(ok.stdout).toMatch(/^PASS: linearizable/m);
    expect(readFileSync(join(dir, 'history.html'), 'utf8')).toContain('<p class="verdict pass">PASS');

    const damaged = b.history([b.stream(1, b.events.filter((e) => e.revision !== w.response!.revision))]);
    writeFileSync(file, JSON.stringify(damaged));
    const bad = await cliWith(DOCKERLESS, 'check', '--verify', file);
    expect(bad).toExitWith(5);
    expect(bad.stdout).toMatch(/^VIOLATION lost-write: c2→haproxy put k1=c2-1 ok @102/m);
    expect(bad.stdout).toMatch(/^FAIL: \d+ violations$/m);
  });

  it('a history an older etcd-lab saved (format 1) is refused, every problem named, exit 2', async () => {
    const file = join(dir, 'old.json');
    writeFileSync(file, JSON.stringify({ lab: 'x', prefix: 'p/', faults: [], writes: [] }));
    const r = await cliWith(DOCKERLESS, 'check', '--verify', file);
    expect(r).toExitWith(2);
    expect(r.stderr).toMatch(/old\.json is not a history the checker can judge: \d+ problems/);
    expect(r.stderr).toMatch(/^ {2}- format: must be one of "etcd-lab-history\/3", "etcd-lab-history\/2" \(got undefined\)$/m);
    expect(r.stderr).toMatch(/^ {2}- operations: must be a list \(got undefined\)$/m);
    expect(r.stderr).toMatch(/record a new one/);
    expect(r.stderr).not.toMatch(/bug in etcd-lab/);
  });

  it('a malformed history gets one clear message, never a verdict or a crash: JSON null, a string time, a time beyond reason', async () => {
    const file = join(dir, 'bad.json');
    for (const [text, says] of [
      ['null', /history: must be an object \(got null\)/],
      ['{"format":"etcd-lab-history/3","operations":[{"callMs":"40"}]}', /operations\[0\]\.callMs: must be milliseconds/],
      ['{"format":"etcd-lab-history/3","operations":[{"callMs":1e400}]}', /operations\[0\]\.callMs: must be milliseconds since the run started, from 0 to 86400000 \(got a number out of range\)/],
    ] as const) {
      writeFileSync(file, text);
      const r = await cliWith(DOCKERLESS, 'check', '--verify', file);
      expect(r).toExitWith(2);
      expect(r.stderr).toMatch(says);
    }
  });
});

describe('finish: the one ending of a command with a result', () => {
  const capture = (work: () => number) => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (out.push(chunk), true)) as typeof process.stdout.write;
    try {
      return { code: work(), out: out.join('') };
    } finally {
      process.stdout.write = write;
    }
  };

  it('--json prints the result whole; text otherwise; --quiet prints nothing for an action that went well', () => {
    expect(capture(() => finish({ json: true }, { a: 1 }, () => ['text']))).toEqual({ code: 0, out: '{\n  "a": 1\n}\n' });
    expect(capture(() => finish({}, { a: 1 }, () => ['one', 'two']))).toEqual({ code: 0, out: 'one\ntwo\n' });
    expect(capture(() => finish({ quiet: true }, { a: 1 }, () => ['text']))).toEqual({ code: 0, out: '' });
  });

  it('a listing prints under --quiet (its result is its output); a failed verdict is said under --quiet, and is the exit code', () => {
    expect(capture(() => finish({ quiet: true }, {}, () => ['listed'], { kind: 'listing' }))).toEqual({ code: 0, out: 'listed\n' });
    expect(capture(() => finish({ quiet: true }, {}, () => ['FAIL'], { exitCode: 5 }))).toEqual({ code: 5, out: 'FAIL\n' });
  });
});
