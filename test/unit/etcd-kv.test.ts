// A write is sent once. HAProxy closes its clients' sessions when the leader changes, after it
// forwarded what they sent: a reset on a kept-alive connection does not prove the request went
// nowhere, and a put sent again is applied twice (what `check` found: a value committed at two
// revisions). Reads are still retried once after such a reset.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { kvGet, kvPut } from '../../src/protocol/etcd-kv.js';

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
});

/** Answers the first request; from the second on, reads it whole (it arrived) and resets the connection. */
async function resettingAfterFirst(): Promise<{ url: string; received: string[] }> {
  const received: string[] = [];
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(`${req.url} ${body}`);
      if (received.length === 1) res.end('{"header":{"revision":"5"}}');
      else if (received.length === 2) req.socket.destroy();
      else res.end('{"header":{"revision":"6"}}');
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received };
}

describe('a reset after the request arrived', () => {
  it('a put is not sent again: it fails with the reset, its outcome unknown to the caller', async () => {
    const { url, received } = await resettingAfterFirst();
    await kvPut(url, 'k', 'v1', 2000);
    await expect(kvPut(url, 'k', 'v2', 2000)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(received.filter((r) => r.startsWith('/v3/kv/put'))).toHaveLength(2);
  });

  it('a read is sent again on a fresh connection, once', async () => {
    const { url, received } = await resettingAfterFirst();
    await kvGet(url, 'k', { timeoutMs: 2000 });
    expect(await kvGet(url, 'k', { timeoutMs: 2000 })).toEqual({ revision: 6 });
    expect(received).toHaveLength(3);
  });
});
