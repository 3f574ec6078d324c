import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatProblem } from '../../src/errors.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { parseSpecYaml } from '../../src/config/load.js';
import { readSpec } from '../../src/config/read.js';
import { quorumOf, quorumState, requiredSubnetSize, toleratedFailures } from '../../src/config/topology.js';
import { imageVersion, olderThan } from '../../src/config/validate.js';
import { readmeExampleSpec } from './readme.js';

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
    const version = imageVersion(DEFAULTS.etcd.image);
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

  it("the README's example spec is valid", () => {
    const { problems } = readSpec(parse(readmeExampleSpec()));
    expect(problems.map(formatProblem)).toEqual([]);
  });
});

/** Each bad input and the problem paths it must produce — all of them, in one pass. */
const BAD_SPECS: { name: string; input: unknown; paths: string[]; mentions?: RegExp[] }[] = [
  { name: 'even member count', input: { members: 4 }, paths: ['members'], mentions: [/tolerate 1 failure, like 3/, /2:2 split/, /use 3 or 5/] },
  { name: 'two members', input: { members: 2 }, paths: ['members'], mentions: [/tolerate 0 failures/] },
  { name: 'too many members', input: { members: 9 }, paths: ['members'] },
  { name: 'zero members', input: { members: 0 }, paths: ['members'] },
  { name: 'members as text', input: { members: 'three' }, paths: ['members'] },
  { name: 'public subnet', input: { network: { subnet: '111.0.0.0/24' } }, paths: ['network.subnet'], mentions: [/not private/] },
  { name: 'subnet with host bits', input: { network: { subnet: '10.1.2.3/24' } }, paths: ['network.subnet'], mentions: [/10\.1\.2\.0/] },
  { name: 'not a CIDR', input: { network: { subnet: '10.1.2.0' } }, paths: ['network.subnet'] },
  { name: 'subnet too small for 5', input: { members: 5, network: { subnet: '10.1.2.0/28' } }, paths: ['network.subnet'], mentions: [/need 32/, /\/27/] },
  { name: 'election below 5x heartbeat', input: { etcd: { heartbeatInterval: '200ms', electionTimeout: '800ms' } }, paths: ['etcd.electionTimeout'], mentions: [/1s/] },
  { name: 'duration without unit', input: { etcd: { heartbeatInterval: 100 } }, paths: ['etcd.heartbeatInterval'], mentions: [/500ms or 2s/] },
  { name: 'quota above 8GiB', input: { etcd: { quotaBackendBytes: '9GiB' } }, paths: ['etcd.quotaBackendBytes'] },
  { name: 'revision retention not a number', input: { etcd: { autoCompaction: { mode: 'revision', retention: '1h' } } }, paths: ['etcd.autoCompaction.retention'] },
  { name: 'unknown compaction mode', input: { etcd: { autoCompaction: { mode: 'daily' } } }, paths: ['etcd.autoCompaction.mode'] },
  { name: 'same client and stats port', input: { haproxy: { clientPort: 2379, statsPort: 2379 } }, paths: ['haproxy.statsPort'] },
  { name: 'port out of range', input: { haproxy: { clientPort: 70000 } }, paths: ['haproxy.clientPort'] },
  { name: 'bad bind address', input: { haproxy: { bindAddress: 'localhost' } }, paths: ['haproxy.bindAddress'] },
  { name: 'unknown balance', input: { haproxy: { balance: 'random-ish' } }, paths: ['haproxy.balance'] },
  { name: 'uppercase name', input: { name: 'My_Lab' }, paths: ['name'] },
  { name: 'tls on', input: { tls: { enabled: true } }, paths: ['tls.enabled'], mentions: [/not available yet/] },
  { name: 'wrong apiVersion', input: { apiVersion: 'v1' }, paths: ['apiVersion'] },
  { name: 'unknown endpoint mode', input: { kind: { endpoint: 'magic' } }, paths: ['kind.endpoint'] },
  { name: 'typo in a key', input: { memebrs: 3 }, paths: ['memebrs'], mentions: [/did you mean members/] },
  { name: 'unknown nested key', input: { haproxy: { healthCheck: { intreval: '1s' } } }, paths: ['haproxy.healthCheck.intreval'], mentions: [/did you mean interval/] },
  { name: 'section that is not a mapping', input: { etcd: 'fast' }, paths: ['etcd'] },
  { name: 'top level not a mapping', input: ['members', 3], paths: ['(top level)'] },
  {
    name: 'every problem at once',
    input: { members: 6, network: { subnet: '8.8.8.0/24' }, etcd: { electionTimeout: '1s', heartbeatInterval: '500ms', extra: 1 }, haproxy: { statsPort: 0 } },
    paths: ['members', 'network.subnet', 'etcd.extra', 'etcd.electionTimeout', 'haproxy.statsPort'],
  },
];

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
