import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatProblem } from '../../src/errors.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { parseSpecYaml } from '../../src/config/load.js';
import { readSpec } from '../../src/config/read.js';
import { quorumOf, quorumState, requiredSubnetSize, toleratedFailures } from '../../src/config/topology.js';
import { imageTagVersion, olderThan } from '../../src/config/validate.js';
import { BAD_SPECS } from './bad-specs.js';
import { documentedExampleSpec } from './documented-example.js';

describe('spec defaults', () => {
  it('an absent or empty file gives the defaults and no problems', () => {
    for (const input of [undefined, null, {}, { apiVersion: 'etcd-lab/v1alpha1' }]) {
      const { spec, problems, warnings } = readSpec(input);
      expect(problems).toEqual([]);
      expect(warnings).toEqual([]);
      expect(spec).toEqual(DEFAULTS);
    }
  });

  it('the default etcd image is new enough for kubeadm (3.5.24+)', () => {
    const version = imageTagVersion(DEFAULTS.etcd.image);
    expect(version).toBeDefined();
    expect(olderThan(version!, [3, 5, 24])).toBe(false);
  });

  it('kind.name follows the lab name unless set', () => {
    expect(readSpec({ name: 'team-a' }).spec.kind.name).toBe('team-a');
    expect(readSpec({ name: 'team-a', kind: { name: 'k' } }).spec.kind.name).toBe('k');
  });

  it('durations and sizes are read in their units', () => {
    const { spec, problems } = readSpec({
      etcd: { heartbeatInterval: '0.25s', electionTimeout: '3s', quotaBackendBytes: '512MiB' },
      haproxy: { healthCheck: { interval: '1s', timeout: '750ms' } },
    });
    expect(problems).toEqual([]);
    expect(spec.etcd.heartbeatIntervalMs).toBe(250);
    expect(spec.etcd.electionTimeoutMs).toBe(3000);
    expect(spec.etcd.quotaBackendBytes).toBe(512 * 1024 ** 2);
    expect(spec.haproxy.healthCheck).toMatchObject({ intervalMs: 1000, timeoutMs: 750 });
  });

  it('the commented template `etcd-lab init` writes is exactly the defaults', () => {
    const text = readFileSync(new URL('../../lab-templates/etcd-lab.yaml', import.meta.url), 'utf8');
    const { spec, problems } = readSpec(parse(text));
    expect(problems).toEqual([]);
    expect(spec).toEqual(DEFAULTS);
  });

  it("the documented example spec is valid", () => {
    const { problems } = readSpec(parse(documentedExampleSpec()));
    expect(problems.map(formatProblem)).toEqual([]);
  });
});

describe('spec validation', () => {
  it.each(BAD_SPECS)('$name', ({ input, paths, mentions }) => {
    const { problems } = readSpec(input);
    expect(problems.map((p) => p.path).sort()).toEqual([...paths].sort());
    const text = problems.map(formatProblem).join('\n');
    for (const pattern of mentions ?? []) expect(text).toMatch(pattern);
  });

  it('names the flag that set a bad value', () => {
    const { problems } = readSpec({ members: 3 }, [{ path: 'members', value: 4, source: '--members' }]);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe('members (from --members)');
  });

  it('flags override the file', () => {
    const { spec, problems } = readSpec({ members: 3 }, [
      { path: 'members', value: 5, source: '--members' },
      { path: 'network.subnet', value: '10.9.9.0/24', source: '--subnet' },
    ]);
    expect(problems).toEqual([]);
    expect(spec.members).toBe(5);
    expect(spec.network.subnet).toBe('10.9.9.0/24');
  });

  it('warns (without refusing) when etcd is older than kubeadm accepts', () => {
    const { problems, warnings } = readSpec({ etcd: { image: 'etcd-lab/etcd:3.5.16' } });
    expect(problems).toEqual([]);
    expect(warnings.map(formatProblem).join()).toMatch(/3\.5\.16 is older than 3\.5\.24/);
  });

  it('warns (without refusing) of an HAProxy older than 3.2, and of leastconn, with what to use instead', () => {
    for (const image of ['haproxy:3.0-alpine', 'haproxy:3.1.7', 'registry.example.com/haproxy:2.8']) {
      const { problems, warnings } = readSpec({ haproxy: { image } });
      expect(problems).toEqual([]);
      expect(warnings.map(formatProblem), image).toEqual([expect.stringMatching(/^haproxy\.image: HAProxy \d+\.\d+ can freeze .* — use haproxy:3\.2-alpine or newer$/)]);
    }
    for (const image of ['haproxy:3.2-alpine', 'haproxy:3.3.1', 'etcd-lab/haproxy:3.2', 'haproxy:lts']) expect(readSpec({ haproxy: { image } }).warnings, image).toEqual([]);
    expect(readSpec({ haproxy: { balance: 'leastconn' } }).warnings.map(formatProblem)).toEqual([expect.stringMatching(/^haproxy\.balance: leastconn makes HAProxy 3\.2 queue .* — use roundrobin/)]);
  });

  it('reports YAML syntax errors and duplicate keys with a line number', () => {
    expect(parseSpecYaml('members: 3\nmembers: 5\n', 'etcd-lab.yaml').problems[0]!.path).toBe('etcd-lab.yaml:2');
    expect(parseSpecYaml('members: [3\n', 'etcd-lab.yaml').problems.length).toBeGreaterThan(0);
  });
});

describe('quorum arithmetic', () => {
  it.each([
    [1, 1, 0],
    [3, 2, 1],
    [5, 3, 2],
    [7, 4, 3],
  ])('%i members: quorum %i, tolerates %i', (members, quorum, tolerated) => {
    expect(quorumOf(members)).toBe(quorum);
    expect(toleratedFailures(members)).toBe(tolerated);
  });

  it('says what a count of members up means', () => {
    expect(quorumState(2, 3, 'alive').text).toBe('2/3 alive — quorum held, tolerates 0 more failures');
    expect(quorumState(5, 5, 'healthy').text).toBe('5/5 healthy — quorum held, tolerates 2 more failures');
    expect(quorumState(4, 5, 'healthy').text).toBe('4/5 healthy — quorum held, tolerates 1 more failure');
    const lost = quorumState(2, 5, 'alive');
    expect(lost).toMatchObject({ held: false, needed: 3, tolerates: -1 });
    expect(lost.text).toMatch(/^2\/5 alive — quorum LOST \(needs 3\)/);
  });

  it('subnet sizes cover gateway, HAProxy, members and broadcast', () => {
    expect(requiredSubnetSize(3)).toBe(16);
    expect(requiredSubnetSize(5)).toBe(32);
    expect(requiredSubnetSize(7)).toBe(32);
  });
});
