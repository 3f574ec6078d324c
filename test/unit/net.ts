// Ports on 127.0.0.1 for tests: one nobody listens on (a member whose container just died, or a
// host port free for the lab to take).
import http from 'node:http';

export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
