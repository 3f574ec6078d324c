// Docker's containers: found by label, started, stopped, frozen, removed, their logs; and the few
// long-running ones etcd-lab starts outside compose.
import type { ContainerClient, ContainerInfo, ServiceRun } from '../engine.js';
import { DockerCalls, short, unless } from './calls.js';

export class DockerContainers implements ContainerClient {
  constructor(private readonly d: DockerCalls) {}

  async list(labelFilters: string[]): Promise<ContainerInfo[]> {
    const list = await this.d.call('list containers', (abortSignal) => this.d.docker.listContainers({ all: true, filters: { label: labelFilters }, abortSignal }));
    return list.map((c) => {
      const hostPorts: Record<number, number> = {};
      for (const p of c.Ports ?? []) if (p.PublicPort && p.Type === 'tcp') hostPorts[p.PrivatePort] = p.PublicPort;
      return {
        id: c.Id,
        name: (c.Names?.[0] ?? '').replace(/^\//, ''),
        labels: c.Labels ?? {},
        image: c.Image,
        state: c.State,
        status: c.Status,
        hostPorts,
        networks: Object.keys(c.NetworkSettings?.Networks ?? {}),
        command: c.Command,
      };
    });
  }

  /** Stops gracefully (SIGTERM, then SIGKILL after `graceSeconds`) and removes. */
  async remove(id: string, graceSeconds = 10): Promise<void> {
    const container = this.d.docker.getContainer(id);
    // A paused container cannot take the stop signal.
    await this.d.change(`unpause container ${short(id)}`, (abortSignal) => container.unpause({ abortSignal })).catch(() => {});
    await this.d.change(`stop container ${short(id)}`, (abortSignal) => container.stop({ t: graceSeconds, abortSignal }), graceSeconds * 1000).catch(() => {});
    await this.d.change(`remove container ${short(id)}`, (abortSignal) => container.remove({ force: true, v: false, abortSignal })).catch(unless(404));
  }

  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    await this.d.change(`kill container ${short(id)}`, (abortSignal) => this.d.docker.getContainer(id).kill({ signal, abortSignal }));
  }

  async stop(id: string, graceSeconds = 10): Promise<void> {
    await this.d.change(`stop container ${short(id)}`, (abortSignal) => this.d.docker.getContainer(id).stop({ t: graceSeconds, abortSignal }), graceSeconds * 1000).catch(
      unless(304), // already stopped
    );
  }

  async start(id: string): Promise<void> {
    await this.d.change(`start container ${short(id)}`, (abortSignal) => this.d.docker.getContainer(id).start({ abortSignal })).catch(unless(304)); // 304: already running
  }

  async pause(id: string): Promise<void> {
    await this.d.change(`pause container ${short(id)}`, (abortSignal) => this.d.docker.getContainer(id).pause({ abortSignal }));
  }

  async unpause(id: string): Promise<void> {
    await this.d.change(`unpause container ${short(id)}`, (abortSignal) => this.d.docker.getContainer(id).unpause({ abortSignal }));
  }

  /** Writes a container's logs to the given streams; resolves when done (or, following, when the container ends). */
  async logs(
    id: string,
    opts: { follow: boolean; tail?: number; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
  ): Promise<void> {
    const container = this.d.docker.getContainer(id);
    const info = await this.d.call(`inspect container ${short(id)}`, (abortSignal) => container.inspect({ abortSignal }));
    const options = { stdout: true, stderr: true, timestamps: false, ...(opts.tail === undefined ? {} : { tail: opts.tail }) };
    if (!opts.follow) {
      // Read whole, so a long log gets the long deadline.
      const buffer = (await this.d.call(`logs of ${short(id)}`, (abortSignal) => container.logs({ ...options, follow: false, abortSignal }), this.d.idleMs)) as unknown as Buffer;
      if (info.Config.Tty) opts.stdout.write(buffer);
      else demuxBuffer(buffer, opts.stdout, opts.stderr);
      return;
    }
    // The deadline covers the engine's answer; following then lasts as long as the container (or until Ctrl-C).
    const stream = (await this.d.call(`follow logs of ${short(id)}`, (abortSignal) => container.logs({ ...options, follow: true, abortSignal }))) as unknown as NodeJS.ReadableStream;
    if (info.Config.Tty) stream.pipe(opts.stdout, { end: false });
    else this.d.docker.modem.demuxStream(stream, opts.stdout, opts.stderr);
    await new Promise<void>((resolve) => stream.on('end', () => resolve()));
  }

  async run(opts: ServiceRun): Promise<string> {
    const port = opts.publish ? `${opts.publish.containerPort}/tcp` : undefined;
    const container = await this.d.change(`create container ${opts.name}`, (abortSignal) =>
      this.d.docker.createContainer({
        name: opts.name,
        Image: opts.image,
        Cmd: opts.args,
        Labels: opts.labels,
        ...(opts.env ? { Env: opts.env } : {}),
        ...(port ? { ExposedPorts: { [port]: {} } } : {}),
        HostConfig: {
          NetworkMode: opts.network,
          Binds: opts.binds ?? [],
          ...(opts.capAdd ? { CapAdd: opts.capAdd } : {}),
          ...(port ? { PortBindings: { [port]: [{ HostIp: '127.0.0.1', HostPort: opts.publish!.hostPort === 0 ? '' : String(opts.publish!.hostPort) }] } } : {}),
        },
        abortSignal,
      }),
    );
    try {
      await this.d.change(`start container ${opts.name}`, (abortSignal) => container.start({ abortSignal }));
    } catch (error) {
      // Started or nothing: a container that was created but cannot start is removed again.
      await this.d.change(`remove container ${opts.name}`, (abortSignal) => container.remove({ force: true, abortSignal })).catch(() => {});
      throw error;
    }
    return container.id;
  }
}

/** Splits Docker's multiplexed log format (8-byte frame headers) into stdout and stderr. */
function demuxBuffer(buffer: Buffer, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): void {
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const kind = buffer[offset];
    const length = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + length);
    (kind === 2 ? stderr : stdout).write(payload);
    offset += 8 + length;
  }
}

/** A container's log (no TTY) as text, stdout and stderr in the order they were written. */
export function demuxedText(buffer: Buffer): string {
  const out: Buffer[] = [];
  const sink = { write: (b: Buffer) => out.push(Buffer.from(b)) } as unknown as NodeJS.WritableStream;
  demuxBuffer(buffer, sink, sink);
  return Buffer.concat(out).toString('utf8');
}
