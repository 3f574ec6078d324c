// The lab's PKI on disk (generated/pki/): a CA and the certificates render/pki.ts asks for, ECDSA
// P-256, made with @peculiar/x509 on Node's WebCrypto. Kept across runs: a certificate is issued
// again only when the names it must carry changed, its CA changed, or it is close to expiry.
import { createPrivateKey, createPublicKey, X509Certificate, type webcrypto } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileError, UserError } from '../errors.js';
import type { TlsSpec } from '../config/types.js';
import type { CertRequest } from '../render/pki.js';
import type { ClientTls } from '../protocol/etcd-http.js';
import { writeFileAtomic } from '../files.js';
import { ExitCode } from '../exit-codes.js';

export const CA = 'ca';

export interface PkiReport {
  dir: string;
  issued: string[];
  kept: string[];
  /** The certificate that expires first, and when. */
  earliest: { name: string; notAfter: string };
}


export function readClientTls(dir: string, client: string): ClientTls {
  const read = (file: string) => {
    const path = join(dir, file);
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(error, path, 'the certificate file', 'fix or remove it, then run `etcd-lab generate`');
      throw new UserError(`the lab's certificate file ${path} is missing`, { hint: 'run `etcd-lab generate` (or `etcd-lab up`) to issue the lab certificates', exitCode: ExitCode.badInput });
    }
  };
  return { ca: read(`${CA}.crt`), cert: read(`${client}.crt`), key: read(`${client}.key`) };
}

/** The certificate under `dir` that expires first (TLS mode's `status` shows it). */
export function earliestExpiry(dir: string): { name: string; notAfter: string } | undefined {
  let earliest: { name: string; notAfter: string } | undefined;
  let files: string[];
  try {
    files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.crt') && basename(f) !== `${CA}.crt`);
  } catch {
    return undefined;
  }
  for (const file of [`${CA}.crt`, ...files]) {
    try {
      const notAfter = new X509Certificate(readFileSync(join(dir, file))).validTo;
      if (!earliest || Date.parse(notAfter) < Date.parse(earliest.notAfter)) earliest = { name: file.replace(/\.crt$/, ''), notAfter };
    } catch {
      /* not a certificate: ensurePki issues it again */
    }
  }
  return earliest;
}

/** Re-issue when less than this much of a certificate's life is left: 30 days, or a third of a short lifetime. */
export function renewBefore(validityMs: number): number {
  return Math.min(30 * 86_400_000, validityMs / 3);
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function sameNames(cert: X509Certificate, request: CertRequest): boolean {
  const have = (cert.subjectAltName ?? '')
    .split(', ')
    .filter(Boolean)
    .sort();
  const want = [...request.dns.map((d) => `DNS:${d}`), ...request.ips.map((ip) => `IP Address:${ip}`)].sort();
  return JSON.stringify(have) === JSON.stringify(want) && cert.subject.split('\n').includes(`CN=${request.commonName}`);
}

/** The certificate at <name>.crt, if there is one whose key is <name>.key (a pair cut in half by a crash is no pair). */
function existing(dir: string, name: string): X509Certificate | undefined {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  if (!existsSync(crt) || !existsSync(key)) return undefined;
  try {
    const cert = new X509Certificate(readFileSync(crt));
    const fromKey = createPublicKey(createPrivateKey(readFileSync(key))).export({ type: 'spki', format: 'der' });
    return fromKey.equals(cert.publicKey.export({ type: 'spki', format: 'der' })) ? cert : undefined;
  } catch {
    return undefined; // unreadable, not a certificate or not a key: issue it again
  }
}

/** Writes whole or not at all, with the mode set before the file appears under its name. */
function writePrivate(path: string, content: string, mode: number): Promise<void> {
  return writeFileAtomic(path, content, { mode });
}

/**
 * Makes sure `dir` holds a CA and every requested certificate, valid for a while yet. Returns what it
 * issued and kept, and the earliest expiry.
 */
export async function ensurePki(dir: string, requests: CertRequest[], tls: TlsSpec, now = new Date()): Promise<PkiReport> {
  try {
    return await issueMissing(dir, requests, tls, now);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === undefined) throw error;
    throw fileError(error, dir, 'the certificate directory', 'fix or remove what is there (`etcd-lab generate` issues anew what is missing)');
  }
}

type X509 = typeof import('@peculiar/x509');

/** What issuing needs: the x509 library on Node's WebCrypto, and the time it is issued at. */
interface Issuer {
  x509: X509;
  subtle: webcrypto.SubtleCrypto;
  now: Date;
  serial(): string;
  exportKey(key: webcrypto.CryptoKey): Promise<string>;
}

async function issuer(now: Date): Promise<Issuer> {
  const [{ webcrypto: crypto }, x509] = await Promise.all([import('node:crypto'), import('reflect-metadata').then(() => import('@peculiar/x509'))]);
  x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const subtle = crypto.subtle;
  return {
    x509,
    subtle,
    now,
    serial: () => {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      bytes[0] = bytes[0]! & 0x7f; // positive
      return Buffer.from(bytes).toString('hex');
    },
    exportKey: async (key) => x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY'),
  };
}

interface LabCa {
  cert: X509Certificate;
  key: webcrypto.CryptoKey;
  x509: InstanceType<X509['X509Certificate']>;
  /** Issued by this run: every certificate is then issued anew. */
  issued: boolean;
}

/** The CA: kept while it is fresh; else a new one. */
async function loadOrIssueCa(dir: string, tls: TlsSpec, is: Issuer, fresh: (cert: X509Certificate, validityMs: number) => boolean): Promise<LabCa> {
  const { x509, subtle, now } = is;
  const have = existing(dir, CA);
  if (have && fresh(have, tls.caValidityMs)) {
    const pem = readFileSync(join(dir, `${CA}.key`), 'utf8');
    const key = await subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), ALGORITHM, true, ['sign']);
    return { cert: have, key, x509: new x509.X509Certificate(have.raw), issued: false };
  }
  const keys = await subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const caX509 = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: is.serial(),
    name: 'CN=etcd-lab CA',
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + tls.caValidityMs),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await writePrivate(join(dir, `${CA}.key`), await is.exportKey(keys.privateKey), 0o600);
  await writePrivate(join(dir, `${CA}.crt`), caX509.toString('pem'), 0o644);
  return { cert: new X509Certificate(caX509.toString('pem')), key: keys.privateKey, x509: caX509, issued: true };
}

/** One leaf certificate and its key, signed by the lab CA, never valid past the CA. */
async function issueLeaf(dir: string, request: CertRequest, ca: LabCa, tls: TlsSpec, is: Issuer): Promise<void> {
  const { x509, subtle, now } = is;
  const keys = await subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const names = [...request.dns.map((value) => ({ type: 'dns' as const, value })), ...request.ips.map((value) => ({ type: 'ip' as const, value }))];
  const usages = [...(request.server ? [x509.ExtendedKeyUsage.serverAuth] : []), ...(request.client ? [x509.ExtendedKeyUsage.clientAuth] : [])];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: is.serial(),
    subject: `CN=${request.commonName}${request.organization ? `, O=${request.organization}` : ''}`,
    issuer: ca.x509.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(Math.min(now.getTime() + tls.certValidityMs, ca.x509.notAfter.getTime())),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(usages),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.x509, false),
    ],
  });
  await writePrivate(join(dir, `${request.name}.key`), await is.exportKey(keys.privateKey), 0o600);
  await writePrivate(join(dir, `${request.name}.crt`), cert.toString('pem'), 0o644);
}

async function issueMissing(dir: string, requests: CertRequest[], tls: TlsSpec, now: Date): Promise<PkiReport> {
  const is = await issuer(now);
  for (const sub of new Set(['.', ...requests.map((r) => dirname(r.name))])) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
  const issued: string[] = [];
  const kept: string[] = [];
  const fresh = (cert: X509Certificate, validityMs: number) => Date.parse(cert.validTo) - now.getTime() > renewBefore(validityMs);

  // A new CA means every certificate is issued anew.
  const ca = await loadOrIssueCa(dir, tls, is, fresh);
  (ca.issued ? issued : kept).push(CA);

  // Whatever runs in a container has a directory of its own (render/pki.ts): each gets the CA certificate.
  const caPem = readFileSync(join(dir, `${CA}.crt`), 'utf8');
  for (const sub of new Set(requests.map((r) => dirname(r.name)).filter((d) => d !== '.'))) {
    const copy = join(dir, sub, `${CA}.crt`);
    if (!existsSync(copy) || readFileSync(copy, 'utf8') !== caPem) await writePrivate(copy, caPem, 0o644);
  }

  for (const request of requests) {
    const have = existing(dir, request.name);
    if (have && !ca.issued && have.verify(ca.cert.publicKey) && sameNames(have, request) && fresh(have, tls.certValidityMs)) {
      kept.push(request.name);
      continue;
    }
    await issueLeaf(dir, request, ca, tls, is);
    issued.push(request.name);
  }

  let earliest = { name: CA, notAfter: ca.cert.validTo };
  for (const request of requests) {
    const cert = existing(dir, request.name)!;
    if (Date.parse(cert.validTo) < Date.parse(earliest.notAfter)) earliest = { name: request.name, notAfter: cert.validTo };
  }
  return { dir, issued, kept, earliest };
}
