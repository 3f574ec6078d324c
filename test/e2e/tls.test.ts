// TLS mode as a person uses it: `up` on a spec with tls.enabled, then Debian's own etcdctl after
// `eval "$(etcd-lab env)"`; and every client that must be refused is, each with its error.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpResult } from '../../src/lab/up.js';
import { readSpec } from '../../src/config/read.js';
import { getKey, putKey } from '../../src/protocol/etcd-http.js';
import { ensurePki } from '../../src/runtime/pki.js';
import { certRequests } from '../../src/render/pki.js';
import type { LabStatus } from '../../src/runtime/status.js';
import { BIN, cliEnv, clientOf, createTestLab, skipE2E, type TestLab } from './lab-fixture.js';

const ETCDCTL = ['/usr/bin/etcdctl', '/usr/local/bin/etcdctl'].find((p) => existsSync(p));

function bash(script: string, cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile('bash', ['-c', script], { cwd, env: cliEnv(env), timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** One HTTPS request to the lab's client port with the given TLS options; resolves to its outcome. */
function attempt(port: number, options: https.RequestOptions): Promise<string> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/v3/kv/range', method: 'POST', agent: false, timeout: 5000, ...options }, (res) => {
      res.resume();
      resolve(`HTTP ${res.statusCode}`);
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(JSON.stringify({ key: Buffer.from('k').toString('base64') }));
  });
}

describe.skipIf(skipE2E)('TLS mode', () => {
  let lab: TestLab;
  let up: UpResult;
  let pki: string;
  const read = (f: string) => readFileSync(join(pki, f), 'utf8');
  const scratch = mkdtempSync(join(tmpdir(), 'elt-tls-'));

  beforeAll(async () => {
    lab = await createTestLab('tls', { tls: { enabled: true } });
    up = await lab.json<UpResult>(['up']);
    pki = join(lab.dir, 'generated', 'pki');
  });
  afterAll(async () => {
    await lab?.remove();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('comes up: every member healthy over TLS, one leader, HAProxy checking each member UP', () => {
    expect(up.clientEndpoint).toBe(`https://127.0.0.1:${lab.clientPort}`);
    expect(up.status.quorum.healthy).toBe(3);
    expect(up.status.members.every((m) => m.backend === 'UP')).toBe(true);
    expect(up.status.members.filter((m) => m.isLeader)).toHaveLength(1);
  });

  it("Debian's etcdctl works after eval \"$(etcd-lab env)\", and is refused without the certificate variables", async () => {
    expect(ETCDCTL, 'Debian etcd-client is not installed: etcd-lab setup-host --clients').toBeDefined();
    const env = `eval "$(${process.execPath} ${BIN} env)"`;
    const ok = await bash(`${env} && etcdctl put tls/greeting hello && etcdctl get tls/greeting --print-value-only`, lab.dir);
    expect(ok).toExitWith(0);
    expect(ok.stdout.trim().split('\n')).toEqual(['OK', 'hello']);
    const bare = await bash(`${env} && unset ETCDCTL_CERT ETCDCTL_KEY && etcdctl --dial-timeout=2s --command-timeout=3s get tls/greeting`, lab.dir);
    expect(bare.code).not.toBe(0);
    expect(bare.stderr).toMatch(/context deadline exceeded|certificate required|bad certificate/);
    // And etcd-lab's own client reads what etcdctl wrote, through HAProxy.
    expect(await getKey(clientOf(lab, up.clientEndpoint), 'tls/greeting')).toBe('hello');
  });

  it('refuses a client with no certificate, one from another CA, and plain HTTP; a name not in the certificate fails verification', async () => {
    const ca = read('ca.crt');
    expect(await attempt(lab.clientPort, { ca, cert: read('admin.crt'), key: read('admin.key') })).toBe('HTTP 200');
    // No client certificate: the member (not HAProxy, which passes TLS through) refuses the handshake.
    expect(await attempt(lab.clientPort, { ca })).toMatch(/ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ECONNRESET|EPIPE/);
    // A certificate from another CA, with every right name: refused all the same.
    const other = join(scratch, 'other-pki');
    const spec = readSpec({ tls: { enabled: true } }).spec;
    await ensurePki(other, certRequests(spec, { bindAddress: '127.0.0.1' }), spec.tls);
    const foreign = { ca, cert: readFileSync(join(other, 'admin.crt')), key: readFileSync(join(other, 'admin.key')) };
    expect(await attempt(lab.clientPort, foreign)).toMatch(/ERR_SSL_TLSV1_ALERT_UNKNOWN_CA|ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE|ECONNRESET/);
    // Plain HTTP to a TLS port gets no etcd answer.
    const plain = await new Promise<string>((resolve) => {
      fetch(`http://127.0.0.1:${lab.clientPort}/v3/kv/range`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(5000) })
        .then((r) => resolve(`HTTP ${r.status}`))
        .catch((e: Error & { cause?: { code?: string } }) => resolve(e.cause?.code ?? e.message));
    });
    expect(plain).not.toMatch(/^HTTP 200/);
    // The client checks the member's certificate against the name it dialled.
    const wrongName = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: lab.clientPort, servername: 'not-in-the-certificate.example', ca, cert: read('admin.crt'), key: read('admin.key') });
      socket.on('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(wrongName).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('keeps private keys in generated/pki only: 0600, ignored by git, in no other generated file', () => {
    const keys = (readdirSync(pki, { recursive: true }) as string[]).filter((f) => f.endsWith('.key'));
    expect(keys.length).toBe(1 + 3 * 3 + 3); // CA; server, peer, healthcheck per member; admin; API server; HAProxy checks
    for (const file of keys) expect(statSync(join(pki, file)).mode & 0o777, file).toBe(0o600);
    const generated = join(lab.dir, 'generated');
    const files = (readdirSync(generated, { recursive: true }) as string[]).filter((f) => !f.startsWith('pki') && statSync(join(generated, f)).isFile());
    expect(files).toContain(join('haproxy', 'haproxy.cfg'));
    for (const file of files) expect(readFileSync(join(generated, file), 'utf8'), file).not.toMatch(/PRIVATE KEY/);
    expect(readFileSync(join(generated, '.gitignore'), 'utf8')).toMatch(/^\*$/m);
  });

  it('a second up keeps every certificate; status reads the lab over TLS', async () => {
    const before = read('etcd1/server.crt');
    const again = await lab.cli(['up']);
    expect(again).toExitWith(0);
    expect(read('etcd1/server.crt')).toBe(before);
    const status = await lab.json<LabStatus>(['status']);
    expect(status.quorum.healthy).toBe(3);
    // The first certificate to expire, about a year out (tls.certValidity's default).
    expect(status.tls?.earliest?.name).toMatch(/^(etcd\d\/(server|peer|healthcheck-client)|admin|kube-apiserver\/kube-apiserver-etcd-client)$/);
    expect(Math.round((Date.parse(status.tls!.earliest!.notAfter) - Date.now()) / 86_400_000)).toBe(365);
    expect((await lab.cli(['status'])).stdout).toMatch(/^TLS {12}client certificates required; first to expire: \S+, .* \(36[45] days;/m);
    await putKey(clientOf(lab, up.clientEndpoint), 'tls/after-restart', 'x');
  });
});
