// Docker's named volumes: found by label, created, filled from a container or another volume, removed.
import type { VolumeClient } from '../engine.js';
import { counted, DockerCalls, short, unless } from './calls.js';

export class DockerVolumes implements VolumeClient {
  constructor(private readonly d: DockerCalls) {}

  async list(labelFilters: string[]): Promise<{ name: string; labels: Record<string, string> }[]> {
    const { Volumes } = await this.d.call('list volumes', (abortSignal) => this.d.docker.listVolumes({ filters: { label: labelFilters }, abortSignal }));
    return (Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels ?? {}) as Record<string, string> }));
  }

  /** A named volume's labels, or undefined when there is no such volume. */
  async labels(name: string): Promise<Record<string, string> | undefined> {
    try {
      const info = await this.d.call(`inspect volume ${name}`, (abortSignal) => this.d.docker.getVolume(name).inspect({ abortSignal }));
      return (info.Labels ?? {}) as Record<string, string>;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  }

  async create(name: string, labels: Record<string, string>): Promise<void> {
    await this.d.change(`create volume ${name}`, (abortSignal) => this.d.docker.createVolume({ Name: name, Driver: 'local', Labels: labels, abortSignal }));
  }

  /**
   * Copies the contents of a directory of a (stopped) container into a volume, owners and modes kept,
   * as a tar stream to a second container that is created but never started (one container cannot
   * stream to itself: the engine holds it for the read while the write waits).
   */
  async copyInto(from: { containerId: string; path: string }, volume: string, image: string, labels: Record<string, string>): Promise<void> {
    const target = await this.d.change(`create container for volume ${volume}`, (abortSignal) =>
      this.d.docker.createContainer({ Image: image, Entrypoint: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none', Binds: [`${volume}:/to`] }, abortSignal }),
    );
    try {
      await this.d.call(
        `copy ${from.path} of container ${short(from.containerId)} into volume ${volume}`,
        async (abortSignal, alive) => {
          const stream = (await this.d.docker.getContainer(from.containerId).getArchive({ path: `${from.path.replace(/\/$/, '')}/.`, abortSignal })) as unknown as NodeJS.ReadableStream;
          await target.putArchive(counted(stream, alive), { path: '/to', abortSignal });
        },
        this.d.idleMs,
      );
    } finally {
      await this.d.change(`remove container for volume ${volume}`, (abortSignal) => target.remove({ force: true, abortSignal })).catch(() => {});
    }
  }

  /** Copies every file of one volume into another. */
  async copy(from: string, to: string, image: string, labels: Record<string, string>): Promise<void> {
    const source = await this.d.change(`create container for volume ${from}`, (abortSignal) =>
      this.d.docker.createContainer({ Image: image, Entrypoint: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none', Binds: [`${from}:/from:ro`] }, abortSignal }),
    );
    try {
      await this.copyInto({ containerId: source.id, path: '/from' }, to, image, labels);
    } finally {
      await this.d.change(`remove container for volume ${from}`, (abortSignal) => source.remove({ force: true, abortSignal })).catch(() => {});
    }
  }

  async remove(name: string): Promise<void> {
    await this.d.change(`remove volume ${name}`, (abortSignal) => this.d.docker.getVolume(name).remove({ abortSignal })).catch(unless(404));
  }
}
