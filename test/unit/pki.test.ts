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

  it('issues a CA, a server and a peer certificate per member and three clients; keys 0600, directory 0700', async () => {
    const report = await ensurePki(dir, certRequests(spec, { bindAddress: '127.0.0.1' }), spec.tls);
    expect(report.issued).toEqual(['ca', 'etcd1-server', 'etcd1-peer', 'etcd2-server', 'etcd2-peer', 'etcd3-server', 'etcd3-peer', 'admin', 'kube-apiserver-etcd-client', 'healthcheck-client']);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const file of readdirSync(dir)) expect(statSync(join(dir, file)).mode & 0o777, file).toBe(file.endsWith('.key') ? 0o600 : 0o644);
    const ca = cert(dir, 'ca');
    expect(ca.ca).toBe(true);
    for (const name of report.issued.filter((n) => n !== 'ca')) {
      const c = cert(dir, name);
      expect(c.verify(ca.publicKey), name).toBe(true);
      expect(c.ca).toBe(false);
      expect(c.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    }
    // Whoever dials HAProxy, by any name, ends at any member: every server certificate carries them all.
    expect(cert(dir, 'etcd2-server').subjectAltName).toBe(
      'DNS:etcd2, DNS:etcd-lab-etcd2, DNS:localhost, DNS:etcd-lab-haproxy, DNS:host.docker.internal, IP Address:10.79.0.12, IP Address:127.0.0.1, IP Address:10.79.0.2',
    );
    expect(cert(dir, 'etcd2-peer').subjectAltName).toBe('DNS:etcd2, DNS:etcd-lab-etcd2, IP Address:10.79.0.12');
    expect(cert(dir, 'kube-apiserver-etcd-client').subject).toBe('CN=kube-apiserver-etcd-client\nO=system:masters');
    expect(cert(dir, 'admin').keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth only
    expect(cert(dir, 'etcd1-server').keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // serverAuth, and clientAuth for etcd's gateway
    // Lifetimes as the spec says (kubeadm's: CA 10 years, leaves 1 year).
    expect(Date.parse(ca.validTo) - Date.now()).toBeGreaterThan(3649 * DAY);
    expect(Math.round((Date.parse(cert(dir, 'admin').validTo) - Date.now()) / DAY)).toBe(365);
    expect(report.earliest.name).toBe('etcd1-server');
  });

  it('keeps everything on a second run; re-issues only what must carry new names', async () => {
    await ensurePki(dir, certRequests(spec, { bindAddress: '127.0.0.1' }), spec.tls);
    const before = readFileSync(join(dir, 'admin.crt'), 'utf8');
    const again = await ensurePki(dir, certRequests(spec, { bindAddress: '127.0.0.1' }), spec.tls);
    expect(again.issued).toEqual([]);
    expect(readFileSync(join(dir, 'admin.crt'), 'utf8')).toBe(before);
    // A teammate's LAN address as bind address: the server certificates must carry it.
    const lan = await ensurePki(dir, certRequests(spec, { bindAddress: '192.168.1.20' }), spec.tls);
    expect(lan.issued).toEqual(['etcd1-server', 'etcd2-server', 'etcd3-server']);
    expect(cert(dir, 'etcd1-server').subjectAltName).toContain('IP Address:192.168.1.20');
  });

  it('re-issues a certificate close to its expiry, and everything under a CA close to its own', async () => {
    const requests = certRequests(spec, { bindAddress: '127.0.0.1' });
    await ensurePki(dir, requests, spec.tls);
    const later = new Date(Date.now() + 365 * DAY - renewBefore(365 * DAY) + DAY);
    expect((await ensurePki(dir, requests, spec.tls, later)).issued).toEqual(requests.map((r) => r.name));
    const muchLater = new Date(Date.now() + 3650 * DAY - renewBefore(3650 * DAY) + DAY);
    expect((await ensurePki(dir, requests, spec.tls, muchLater)).issued).toEqual(['ca', ...requests.map((r) => r.name)]);
  });

  it('a certificate from another CA, or a damaged file, is issued again', async () => {
    const requests = certRequests(spec, { bindAddress: '127.0.0.1' });
    const other = join(dir, '..', 'other');
    await ensurePki(dir, requests, spec.tls);
    await ensurePki(other, requests, spec.tls);
    const { copyFileSync, writeFileSync } = await import('node:fs');
    copyFileSync(join(other, 'admin.crt'), join(dir, 'admin.crt'));
    copyFileSync(join(other, 'admin.key'), join(dir, 'admin.key'));
    writeFileSync(join(dir, 'etcd3-peer.crt'), 'not a certificate');
    expect((await ensurePki(dir, requests, spec.tls)).issued).toEqual(['etcd3-peer', 'admin']);
  });
});
