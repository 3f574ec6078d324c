// One-off tool runs: one of an image's own tools (etcdctl, etcdutl, iptables) in a container of its
// own, files in and out through the engine's archive API, removed when it ends.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { unlessInterrupted } from '../../interrupt.js';
import type { ToolClient, ToolFile, ToolRun } from '../engine.js';
import { counted, DockerCalls } from './calls.js';
import { demuxedText } from './containers.js';

export class DockerTools implements ToolClient {
  constructor(private readonly d: DockerCalls) {}

  /**
   * Runs one of an image's own tools (etcdctl, etcdutl) in a container of its own and removes it.
   * Files go in and out through the engine's archive API, not bind mounts: that needs no shell in
   * the image and no host path the engine can see (Docker Desktop shares only some).
   */
  async run(opts: ToolRun): Promise<{ exitCode: number; output: string; containerId: string }> {
    const tool = opts.command[0] ?? 'tool';
    const container = await this.d.change(`create container for ${tool}`, (abortSignal) =>
      this.d.docker.createContainer({
        Image: opts.image,
        Entrypoint: opts.command.slice(0, 1),
        Cmd: opts.command.slice(1),
        Env: opts.env,
        Labels: opts.labels,
        HostConfig: {
          NetworkMode: opts.network ?? 'none',
          Binds: [...(opts.binds ?? []), ...(opts.volumes ?? []).map((v) => `${v.volume}:${v.path}`)],
        },
        abortSignal,
      }),
    );
    const kill = () => void this.d.change(`kill ${tool}`, (abortSignal) => container.kill({ abortSignal })).catch(() => {});
    let kept = false;
    try {
      const inputs = opts.inputs;
      if (inputs) {
        await this.d.call(
          `copy files into ${tool}'s container`,
          (abortSignal, alive) => container.putArchive(counted(packFiles(inputs.files), alive), { path: inputs.dir, abortSignal }),
          this.d.idleMs,
        );
      }
      await this.d.change(`start ${tool}`, (abortSignal) => container.start({ abortSignal }));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, opts.timeoutMs);
      // The tool's own timeout kills it; the engine then has its usual deadline to say so.
      const { StatusCode } = (await this.d.call(`wait for ${tool}`, (abortSignal) => unlessInterrupted(container.wait({ abortSignal }), kill), opts.timeoutMs + this.d.engineMs).finally(() =>
        clearTimeout(timer),
      )) as { StatusCode: number };
      const raw = (await this.d.call(`logs of ${tool}`, (abortSignal) => container.logs({ stdout: true, stderr: true, abortSignal }))) as unknown as Buffer;
      const output = opts.output;
      if (StatusCode === 0 && output) {
        await this.d.call(
          `copy ${output.from} out of ${tool}'s container`,
          async (abortSignal, alive) => extractFile(counted((await container.getArchive({ path: output.from, abortSignal })) as unknown as NodeJS.ReadableStream, alive), output.to),
          this.d.idleMs,
        );
      }
      const text = demuxedText(raw).trim();
      // Kept only for a caller that gets its id back: a failure on the way removes it.
      kept = Boolean(opts.keep);
      return { exitCode: StatusCode, output: timedOut ? `${text}\n${tool} timed out after ${Math.round(opts.timeoutMs / 1000)} s`.trim() : text, containerId: container.id };
    } finally {
      if (!kept) await this.d.change(`remove ${tool}'s container`, (abortSignal) => container.remove({ force: true, abortSignal })).catch(() => {});
    }
  }
}

/** A tar stream of the given files, host files streamed rather than read whole. */
function packFiles(files: ToolFile[]): NodeJS.ReadableStream {
  const pack = tar.pack();
  void (async () => {
    try {
      for (const file of files) {
        const mode = file.mode ?? 0o600;
        if (file.hostPath !== undefined) {
          const { size } = await stat(file.hostPath);
          const entry = pack.entry({ name: file.name, size, mode });
          await pipeline(createReadStream(file.hostPath), entry);
        } else {
          await new Promise<void>((resolve, reject) => pack.entry({ name: file.name, mode }, file.content ?? '', (e) => (e ? reject(e) : resolve())));
        }
      }
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
    }
  })();
  return pack as unknown as NodeJS.ReadableStream;
}

/** Writes the single file of an archive the engine sent (GET …/archive) to `to`. */
async function extractFile(archive: NodeJS.ReadableStream, to: string): Promise<void> {
  const extract = tar.extract();
  let found = false;
  extract.on('entry', (header, stream, next) => {
    if (header.type !== 'file' || found) {
      stream.on('end', next);
      stream.resume();
      return;
    }
    found = true;
    pipeline(stream, createWriteStream(to, { mode: 0o600 })).then(() => next(), (e: Error) => extract.destroy(e));
  });
  await pipeline(archive, extract);
  if (!found) throw new Error(`the container's archive held no file for ${basename(to)}`);
}
