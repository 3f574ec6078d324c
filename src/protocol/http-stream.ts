// A long-lived HTTP(S) request whose answer is a stream of JSON lines: etcd's watch, Kubernetes'
// watch. Its own connection (not the keep-alive pool: it stays open for the stream's life).
import http from 'node:http';
import https from 'node:https';
import { endpointUrl, type Endpoint } from './etcd-http.js';

export type StreamEnd = { end: 'closed' } | { end: 'broken'; reason: string; status?: number };

export interface LineStream {
  /** Ends the stream; `ended` then resolves with { end: 'closed' }. */
  close(): void;
  /** Ends it as broken from inside (the caller read something that ends it). */
  fail(reason: string): void;
  ended: Promise<StreamEnd>;
}

export function streamLines(
  endpoint: Endpoint,
  request: { method: string; path: string; body?: string },
  onLine: (line: string) => void,
  connectTimeoutMs = 2000,
): LineStream {
  const url = `${endpointUrl(endpoint)}${request.path}`;
  const tls = typeof endpoint === 'string' ? undefined : endpoint.tls;
  const send = url.startsWith('https:') ? https.request : http.request;
  let closing = false;
  let settle: (end: StreamEnd) => void = () => {};
  const ended = new Promise<StreamEnd>((resolve) => {
    let done = false;
    settle = (end) => {
      if (done) return;
      done = true;
      resolve(closing ? { end: 'closed' } : end);
    };
  });
  const headers = request.body === undefined ? {} : { 'content-type': 'application/json' };
  const req = send(url, { method: request.method, headers, agent: tls ? new https.Agent({ ca: tls.ca, cert: tls.cert, key: tls.key }) : false }, (response) => {
    clearTimeout(connectTimer);
    const status = response.statusCode ?? 0;
    if (status >= 300) {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => settle({ end: 'broken', reason: `HTTP ${status} ${text.trim().slice(0, 200)}`, status }));
      return;
    }
    let buffer = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const line = buffer.slice(0, i).trim();
        buffer = buffer.slice(i + 1);
        if (line) onLine(line);
      }
    });
    response.on('end', () => settle({ end: 'broken', reason: 'the stream ended' }));
    response.on('error', (error) => settle({ end: 'broken', reason: error.message }));
  });
  const connectTimer = setTimeout(() => req.destroy(new Error('no answer to the watch request')), connectTimeoutMs);
  req.on('error', (error) => {
    clearTimeout(connectTimer);
    settle({ end: 'broken', reason: error.message });
  });
  req.on('close', () => settle({ end: 'broken', reason: 'connection closed' }));
  req.end(request.body);
  return {
    close() {
      closing = true;
      req.destroy();
      settle({ end: 'closed' });
    },
    fail(reason: string) {
      settle({ end: 'broken', reason });
      req.destroy();
    },
    ended,
  };
}
