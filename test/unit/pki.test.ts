// The lab PKI: what is issued, with which names and modes, and what is kept or issued again.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSpec } from '../../src/config/read.js';
import { certRequests } from '../../src/render/pki.js';
import { ensurePki, renewBefore } from '../../src/runtime/pki.js';

const DAY = 86_400_000;
const spec = readSpec({ tls: { enabled: true } }).spec;
const cert = (dir: string, name: string) => new X509Certificate(readFileSync(join(dir, `${name}.crt`)));

describe('the lab PKI', () => {
  let dir: string;
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'etcd-lab-pki-')), 'pki');
  });
  afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

  it('issues a CA; per member a server, a peer and a healthcheck certificate; the admin and API server clients; keys 0600, directories 0700', async () => {
    const report = await ensurePki(dir, certRequests(spec, { bindAddress: '127.0.0.1' }), spec.tls);
    expect(report.issued).toEqual([
      'ca',
      ...['etcd1', 'etcd2', 'etcd3'].flatMap((m) => [`${m}/server`, `${m}/peer`, `${m}/healthcheck-client`]),
      'admin',
      'kube-apiserver/kube-apiserver-etcd-client',
      'haproxy/haproxy-check-client',
    ]);
    for (const sub of ['.', 'etcd1', 'kube-apiserver', 'haproxy']) expect(statSync(join(dir, sub)).mode & 0o777, sub).toBe(0o700);
    const files = readdirSync(dir, { recursive: true }) as string[];
    for (const file of files.filter((f) => /\.(crt|key)$/.test(f))) expect(statSync(join(dir, file)).mode & 0o777, file).toBe(file.endsWith('.key') ? 0o600 : 0o644);
    // Each container's directory holds all it needs, the CA certificate included; only the top holds the CA key.
    expect(readdirSync(join(dir, 'etcd2')).sort()).toEqual(['ca.crt', 'healthcheck-client.crt', 'healthcheck-client.key', 'peer.crt', 'peer.key', 'server.crt', 'server.key']);
    expect(readdirSync(join(dir, 'kube-apiserver')).sort()).toEqual(['ca.crt', 'kube-apiserver-etcd-client.crt', 'kube-apiserver-etcd-client.key']);
    expect(readdirSync(join(dir, 'haproxy')).sort()).toEqual(['ca.crt', 'haproxy-check-client.crt', 'haproxy-check-client.key']);
    expect(readFileSync(join(dir, 'etcd2/ca.crt'), 'utf8')).toBe(readFileSync(join(dir, 'ca.crt'), 'utf8'));
    expect(files.filter((f) => f.endsWith('ca.key'))).toEqual(['ca.key']);
    const ca = cert(dir, 'ca');
    expect(ca.ca).toBe(true);
    for (const name of report.issued.filter((n) => n !== 'ca')) {
      const c = cert(dir, name);
      expect(c.verify(ca.publicKey), name).toBe(true);
      expect(c.ca).toBe(false);
      expect(c.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    }
    // Whoever dials HAProxy, by any name, ends at any member: every server certificate carries them all.
    expect(cert(dir, 'etcd2/server').subjectAltName).toBe(
      'DNS:etcd2, DNS:etcd-lab-etcd2, DNS:localhost, DNS:etcd-lab-haproxy, DNS:host.docker.internal, IP Address:10.79.0.12, IP Address:127.0.0.1, IP Address:10.79.0.2',
    );
    expect(cert(dir, 'etcd2/peer').subjectAltName).toBe('DNS:etcd2, DNS:etcd-lab-etcd2, IP Address:10.79.0.12');
    expect(cert(dir, 'kube-apiserver/kube-apiserver-etcd-client').subject).toBe('CN=kube-apiserver-etcd-client\nO=system:masters');
    expect(cert(dir, 'admin').keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth only
    expect(cert(dir, 'etcd1/server').keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // serverAuth, and clientAuth for etcd's gateway
    // Lifetimes as the spec says (kubeadm's: CA 10 years, leaves 1 year).
    expect(Date.parse(ca.validTo) - Date.now()).toBeGreaterThan(3649 * DAY);
    expect(Math.round((Date.parse(cert(dir, 'admin').validTo) - Date.now()) / DAY)).toBe(365);
    expect(report.earliest.name).toBe('etcd1/server');
  });

  it('keeps everything on a second run; re-issues only what must carry new names', async () => {
    await ensurePki(dir, certRequests(spec, { bindAddress: '127.0.0.1' }), spec.tls);
    const before = readFileSync(join(dir, 'admin.crt'), 'utf8');
    const again = await ensurePki(dir, certRequests(spec, { bindAddress: '127.0.0.1' }), spec.tls);
    expect(again.issued).toEqual([]);
    expect(readFileSync(join(dir, 'admin.crt'), 'utf8')).toBe(before);
    // A teammate's LAN address as bind address: the server certificates must carry it.
    const lan = await ensurePki(dir, certRequests(spec, { bindAddress: '192.168.1.20' }), spec.tls);
    expect(lan.issued).toEqual(['etcd1/server', 'etcd2/server', 'etcd3/server']);
    expect(cert(dir, 'etcd1/server').subjectAltName).toContain('IP Address:192.168.1.20');
    // A loopback address other than 127.0.0.1 is dialled as such: it must be in the certificates too.
    const other = await ensurePki(dir, certRequests(spec, { bindAddress: '127.0.0.2' }), spec.tls);
    expect(other.issued).toEqual(['etcd1/server', 'etcd2/server', 'etcd3/server']);
    expect(cert(dir, 'etcd3/server').subjectAltName).toContain('IP Address:127.0.0.2');
  });

  it('re-issues a certificate close to its expiry, and everything under a CA close to its own', async () => {
    const requests = certRequests(spec, { bindAddress: '127.0.0.1' });
    await ensurePki(dir, requests, spec.tls);
    const later = new Date(Date.now() + 365 * DAY - renewBefore(365 * DAY) + DAY);
    expect((await ensurePki(dir, requests, spec.tls, later)).issued).toEqual(requests.map((r) => r.name));
    const muchLater = new Date(Date.now() + 3650 * DAY - renewBefore(3650 * DAY) + DAY);
    expect((await ensurePki(dir, requests, spec.tls, muchLater)).issued).toEqual(['ca', ...requests.map((r) => r.name)]);
  });

  it('a key that does not belong to its certificate (a write cut short) is issued again', async () => {
    const requests = certRequests(spec, { bindAddress: '127.0.0.1' });
    await ensurePki(dir, requests, spec.tls);
    const { copyFileSync } = await import('node:fs');
    copyFileSync(join(dir, 'etcd1/peer.key'), join(dir, 'etcd1/server.key'));
    expect((await ensurePki(dir, requests, spec.tls)).issued).toEqual(['etcd1/server']);
  });

  it('a certificate from another CA, or a damaged file, is issued again', async () => {
    const requests = certRequests(spec, { bindAddress: '127.0.0.1' });
    const other = join(dir, '..', 'other');
    await ensurePki(dir, requests, spec.tls);
    await ensurePki(other, requests, spec.tls);
    const { copyFileSync, writeFileSync } = await import('node:fs');
    copyFileSync(join(other, 'admin.crt'), join(dir, 'admin.crt'));
    copyFileSync(join(other, 'admin.key'), join(dir, 'admin.key'));
    writeFileSync(join(dir, 'etcd3/peer.crt'), 'not a certificate');
    expect((await ensurePki(dir, requests, spec.tls)).issued).toEqual(['etcd3/peer', 'admin']);
  });
});
