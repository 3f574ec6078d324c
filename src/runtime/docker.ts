// The runtime boundary: the only module that talks to Docker (dockerode for the engine API,
// `docker compose` as a child process). Everything else uses this class, so errors carry a fix.
import { spawn } from 'node:child_process';
import Docker from 'dockerode';
import { UserError } from '../errors.js';

export interface BuildOptions {
  context: string;
  tag: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  onLine?: (line: string) => void;
}

export function dockerUnreachable(cause: unknown): UserError {
  const host = process.env.DOCKER_HOST;
  return new UserError(
    host ? `Docker is not reachable at DOCKER_HOST=${host}` : 'Docker is not running (no engine answers on its socket)',
    {
      hint: host
        ? 'start that engine, or unset DOCKER_HOST to use the local one'
        : 'start Docker Desktop, or your Docker service (`sudo systemctl start docker`, or `scripts/setup-host.sh` on a bare Debian machine)',
      cause,
      exitCode: 3,
    },
  );
}

/** Resolves when a dockerode progress stream ends; rejects on an error event inside it. */
function followStream(docker: Docker, stream: NodeJS.ReadableStream, onLine?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null, events: { error?: string; errorDetail?: { message?: string } }[]) => {
        const failed = error ?? events.find((e) => e.error);
        if (failed) reject(new Error(failed instanceof Error ? failed.message : (failed.errorDetail?.message ?? failed.error)));
        else resolve();
      },
      (event: { stream?: string; status?: string; progress?: string }) => {
        const text = (event.stream ?? [event.status, event.progress].filter(Boolean).join(' ')).trim();
        if (text && onLine) onLine(text);
      },
    );
  });
}

export class DockerEngine {
  readonly docker: Docker;

  constructor(docker?: Docker) {
    // dockerode honours DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) like the docker CLI.
    this.docker = docker ?? new Docker();
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw dockerUnreachable(error);
    }
  }

  async info(): Promise<{ operatingSystem: string; serverVersion: string; dockerDesktop: boolean }> {
    const info = await this.docker.info().catch((e: unknown) => {
      throw dockerUnreachable(e);
    });
    const operatingSystem = String(info.OperatingSystem ?? '');
    return { operatingSystem, serverVersion: String(info.ServerVersion ?? ''), dockerDesktop: /Docker Desktop/i.test(operatingSystem) };
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return false;
      throw dockerUnreachable(error);
    }
  }

  /** Pulls an image. Returns the registry's refusal as text (no registry here, no such tag) instead of throwing. */
  async pullImage(ref: string, onLine?: (line: string) => void): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const stream = await this.docker.pull(ref);
      await followStream(this.docker, stream, onLine);
      return { ok: true };
    } catch (error) {
      return { ok: false, reason: (error as Error).message.split('\n')[0]! };
    }
  }

  async buildImage(opts: BuildOptions): Promise<void> {
    const stream = await this.docker.buildImage(
      { context: opts.context, src: ['Dockerfile'] },
      { t: opts.tag, buildargs: opts.buildArgs ?? {}, labels: opts.labels ?? {}, rm: true, forcerm: true },
    );
    await followStream(this.docker, stream, opts.onLine);
  }

  /** Imports a root file system (a tar stream) as an image: how a base is made without a registry. */
  async importImage(tar: NodeJS.ReadableStream, repo: string, tag: string): Promise<void> {
    const stream = await this.docker.importImage(tar, { repo, tag });
    await followStream(this.docker, stream);
  }
}

/** Runs a command to completion, collecting output; rejects with the tail of stderr. */
export function run(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; onLine?: (line: string) => void; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const lines = (chunk: Buffer) => {
      if (!opts.onLine) return;
      for (const line of chunk.toString().split('\n')) if (line.trim()) opts.onLine(line.trim());
    };
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
      lines(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
      lines(c);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else {
        const tail = stderr.trim().split('\n').slice(-5).join('\n');
        reject(Object.assign(new Error(`${command} ${args.join(' ')} exited with ${code}${tail ? `:\n${tail}` : ''}`), { code, stdout, stderr }));
      }
    });
    child.stdin.end(opts.input ?? '');
  });
}
