// Docker's images: asked after, pulled, built, imported from a root file system, their build
// stages removed.
import { readdirSync } from 'node:fs';
import { UserError } from '../../errors.js';
import type { BuildOptions, ImageClient } from '../engine.js';
import { dockerUnreachable, isUnreachable, withDeadline } from '../deadlines.js';
import { counted, DockerCalls, followStream } from './calls.js';

export class DockerImages implements ImageClient {
  constructor(private readonly d: DockerCalls) {}

  async exists(ref: string): Promise<boolean> {
    return (await this.labels(ref)) !== undefined;
  }

  async labels(ref: string): Promise<Record<string, string> | undefined> {
    try {
      // No abortSignal here in dockerode: on expiry we stop waiting.
      const image = await this.d.call(`inspect image ${ref}`, () => this.d.docker.getImage(ref).inspect());
      return (image.Config?.Labels as Record<string, string> | null | undefined) ?? {};
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  }

  /** Pulls an image. Returns the registry's refusal as text (no registry here, no such tag) instead of throwing. */
  async pull(ref: string, onLine?: (line: string) => void): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      await withDeadline(`pull ${ref}`, this.d.idleMs, async (abortSignal, alive) => {
        const stream = (await this.d.docker.pull(ref, { abortSignal })) as NodeJS.ReadableStream;
        await followStream(this.d.docker, stream, onLine, { signal: abortSignal, alive });
      });
      return { ok: true };
    } catch (error) {
      // Ctrl-C, a hung engine, no engine: not the registry's answer.
      if (error instanceof UserError) throw error;
      if (isUnreachable(error)) throw dockerUnreachable(error);
      return { ok: false, reason: shortPullError((error as Error).message) };
    }
  }

  async build(opts: BuildOptions): Promise<void> {
    await this.d.call(
      `build image ${opts.tag}`,
      async (abortSignal, alive) => {
        const stream = await this.d.docker.buildImage(
          // The whole directory: a recipe's other files (patches) are part of it.
          { context: opts.context, src: readdirSync(opts.context) },
          { t: opts.tag, buildargs: opts.buildArgs ?? {}, labels: opts.labels ?? {}, rm: true, forcerm: true, abortSignal },
        );
        await followStream(this.d.docker, stream, opts.onLine, { signal: abortSignal, alive });
      },
      this.d.idleMs,
    );
  }

  async removeDangling(labelFilters: string[]): Promise<{ removed: number; bytes: number }> {
    const images = await this.d.call('list images', (abortSignal) => this.d.docker.listImages({ filters: { dangling: ['true'], label: labelFilters }, abortSignal }));
    let bytes = 0;
    for (const image of images) {
      await this.d.change(`remove image ${image.Id.slice(7, 19)}`, (abortSignal) => this.d.docker.getImage(image.Id).remove({ abortSignal }));
      bytes += image.Size;
    }
    return { removed: images.length, bytes };
  }

  /** Imports a root file system (a tar stream) as an image: how a base is made without a registry. */
  async importRootfs(tar: NodeJS.ReadableStream, repo: string, tag: string): Promise<void> {
    await this.d.call(
      `import image ${repo}:${tag}`,
      async (abortSignal, alive) => {
        const stream = await this.d.docker.importImage(counted(tar, alive), { repo, tag, abortSignal });
        await followStream(this.d.docker, stream, undefined, { signal: abortSignal, alive });
      },
      this.d.idleMs,
    );
  }
}

/** "(HTTP code 500) server error - Get …: dial tcp: lookup gcr.io on …: no such host" → "lookup gcr.io …: no such host". */
export function shortPullError(message: string): string {
  const line = message.split('\n')[0]!.trim();
  const dial = /dial tcp: (.*)$/.exec(line)?.[1];
  return (dial ?? line.replace(/^\(HTTP code \d+\)\s*[\w ]*error - /, '')).replace(/ on [\d.:]+:53/, '').trim();
}
