// The only module that talks to Docker (dockerode for the engine API, `docker compose` as a child
// process), as one small client per resource (docker/): everything else goes through the Engine
// interface, so errors carry a fix and every call has a deadline.
import Docker from 'dockerode';
import type { Engine } from './engine.js';
import { DockerCalls } from './docker/calls.js';
import { DockerCompose } from './docker/compose.js';
import { DockerContainers } from './docker/containers.js';
import { DockerImages } from './docker/images.js';
import { DockerNetworks } from './docker/networks.js';
import { DockerTools } from './docker/tools.js';
import { DockerVolumes } from './docker/volumes.js';

/** dockerode takes an abortSignal for these too; its types do not say so. */
interface Abortable {
  ping(opts: { abortSignal: AbortSignal }): Promise<unknown>;
  info(opts: { abortSignal: AbortSignal }): Promise<{ OperatingSystem?: string; ServerVersion?: string }>;
}

export class DockerEngine implements Engine {
  readonly docker: Docker;
  readonly containers: DockerContainers;
  readonly images: DockerImages;
  readonly networks: DockerNetworks;
  readonly volumes: DockerVolumes;
  readonly compose: DockerCompose;
  readonly tools: DockerTools;
  private readonly calls: DockerCalls;

  /**
   * The deadlines are per call, not the modem's `timeout`: that one would also end a log that is
   * followed, or a build that streams progress for many minutes.
   */
  constructor(docker?: Docker, deadlines: { engineMs?: number; changeMs?: number; idleMs?: number } = {}) {
    // dockerode honours DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) like the docker CLI.
    this.docker = docker ?? new Docker();
    this.calls = new DockerCalls(this.docker, deadlines);
    this.containers = new DockerContainers(this.calls);
    this.images = new DockerImages(this.calls);
    this.networks = new DockerNetworks(this.calls);
    this.volumes = new DockerVolumes(this.calls);
    this.compose = new DockerCompose();
    this.tools = new DockerTools(this.calls);
  }

  async ping(): Promise<void> {
    await this.calls.call('ping', (abortSignal) => (this.docker as unknown as Abortable).ping({ abortSignal }));
  }

  async info(): Promise<{ operatingSystem: string; serverVersion: string; dockerDesktop: boolean }> {
    const info = await this.calls.call('info', (abortSignal) => (this.docker as unknown as Abortable).info({ abortSignal }));
    const operatingSystem = String(info.OperatingSystem ?? '');
    return { operatingSystem, serverVersion: String(info.ServerVersion ?? ''), dockerDesktop: /Docker Desktop/i.test(operatingSystem) };
  }
}
