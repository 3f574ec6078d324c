// Where a lab is: its name and files, and the endpoints this machine reaches it at (HAProxy's client
// port and stats page, each member's published client port), with etcd-lab's own client certificate
// in TLS mode. Nothing here asks Docker or etcd anything.
import { join } from 'node:path';
import { COMPOSE_FILE } from '../render/index.js';
import type { LoadedLab } from '../config/load.js';
import { clientEndpointOf, dialAddress, ETCD_CLIENT_PORT, LABEL, labTopology, type LabTopology } from '../config/topology.js';
import { DockerEngine } from '../engine/docker.js';
import type { ContainerInfo, Engine } from '../engine/engine.js';
import type { ClientTls, Endpoint } from '../protocol/etcd-http.js';
import { readClientTls } from './pki.js';
import { CLIENTS, pkiDirOf } from '../render/pki.js';

export class LabAddresses {
  readonly topology: LabTopology;

  constructor(
    readonly lab: LoadedLab,
    readonly engine: Engine = new DockerEngine(),
  ) {
    this.topology = labTopology(lab.spec);
  }

  get name(): string {
    return this.lab.spec.name;
  }

  get composeFile(): string {
    return join(this.lab.outDir, COMPOSE_FILE);
  }

  protected get labLabel(): string {
    return `${LABEL.lab}=${this.name}`;
  }

  /** Where this machine reaches a published port. */
  protected get hostAddress(): string {
    return dialAddress(this.lab.local.bindAddress);
  }

  protected get scheme(): string {
    return this.lab.spec.tls.enabled ? 'https' : 'http';
  }

  /** The lab's client URL through HAProxy, as people dial it. */
  get clientEndpoint(): string {
    return clientEndpointOf(this.lab.spec, this.lab.local);
  }

  private tls: ClientTls | undefined;

  /** Where etcd-lab's own TLS files are: generated/pki/. */
  get pkiDir(): string {
    return pkiDirOf(this.lab.outDir);
  }

  /** A URL of this lab as etcd-lab itself reaches it: in TLS mode with the admin client certificate. */
  endpoint(url: string): Endpoint {
    if (!this.lab.spec.tls.enabled) return url;
    this.tls ??= readClientTls(this.pkiDir, CLIENTS.admin);
    return { url, tls: this.tls };
  }

  /** HAProxy's client port, as etcd-lab reaches it. */
  get client(): Endpoint {
    return this.endpoint(this.clientEndpoint);
  }

  get statsUrl(): string {
    return `http://${this.hostAddress}:${this.lab.local.statsPort}/stats`;
  }

  get statsCredentials(): { user: string; password: string } {
    return { user: this.lab.local.statsUser, password: this.lab.local.statsPassword };
  }

  /** The member's client API on this machine, if its container runs and publishes it. */
  memberEndpoint(container: ContainerInfo): Endpoint | undefined {
    const port = container.hostPorts[ETCD_CLIENT_PORT];
    return container.state === 'running' && port ? this.endpoint(`${this.scheme}://${this.hostAddress}:${port}`) : undefined;
  }
}
