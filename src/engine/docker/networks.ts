// Docker's networks: found by label, created, containers connected and disconnected, removed.
import type { NetworkClient, NetworkInfo } from '../engine.js';
import { DockerCalls, short, unless } from './calls.js';

export class DockerNetworks implements NetworkClient {
  constructor(private readonly d: DockerCalls) {}

  async list(labelFilters?: string[]): Promise<NetworkInfo[]> {
    const list = await this.d.call('list networks', (abortSignal) => this.d.docker.listNetworks({ ...(labelFilters ? { filters: { label: labelFilters } } : {}), abortSignal }));
    return list.map((n) => ({
      id: n.Id,
      name: n.Name,
      labels: n.Labels ?? {},
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? '').filter((s) => s.includes('.')),
    }));
  }

  async create(name: string, labels: Record<string, string>, options: Record<string, string> = {}): Promise<string> {
    const network = await this.d.change(`create network ${name}`, (abortSignal) =>
      this.d.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: labels, Options: options, CheckDuplicate: true, abortSignal }),
    );
    return network.id;
  }

  async connect(networkId: string, containerId: string, ipv4Address?: string): Promise<void> {
    await this.d.change(`connect container ${short(containerId)} to network ${short(networkId)}`, (abortSignal) => {
      const options = { Container: containerId, ...(ipv4Address ? { EndpointConfig: { IPAMConfig: { IPv4Address: ipv4Address } } } : {}), abortSignal };
      return this.d.docker.getNetwork(networkId).connect(options);
    });
  }

  async disconnect(networkId: string, containerId: string): Promise<void> {
    await this.d.change(`disconnect container ${short(containerId)} from network ${short(networkId)}`, (abortSignal) =>
      this.d.docker.getNetwork(networkId).disconnect({ Container: containerId, Force: true, abortSignal }),
    );
  }

  async remove(id: string): Promise<void> {
    await this.d.change(`remove network ${short(id)}`, (abortSignal) => this.d.docker.getNetwork(id).remove({ abortSignal })).catch(unless(404));
  }
}
