// Bad specs with the problem paths each must produce: the validator's table tests, and what the
// JSON Schema must agree with.

/** Each bad input and the problem paths it must produce — all of them, in one pass. */
export const BAD_SPECS: { name: string; input: unknown; paths: string[]; mentions?: RegExp[] }[] = [
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
  { name: 'bind address octet above 255', input: { haproxy: { bindAddress: '999.1.1.1' } }, paths: ['haproxy.bindAddress'] },
  { name: 'image with capitals', input: { etcd: { image: 'Quay.io/CoreOS/etcd:v3.5.33' } }, paths: ['etcd.image'], mentions: [/capital letters/, /quay\.io\/coreos\/etcd:v3\.5\.33/] },
  { name: 'image with a space', input: { haproxy: { image: 'haproxy 3.0' } }, paths: ['haproxy.image'] },
  { name: 'unknown balance', input: { haproxy: { balance: 'random-ish' } }, paths: ['haproxy.balance'] },
  { name: 'uppercase name', input: { name: 'My_Lab' }, paths: ['name'] },
  { name: 'tls.enabled not a boolean', input: { tls: { enabled: 'yes' } }, paths: ['tls.enabled'], mentions: [/true or false/] },
  { name: 'certificate lifetime in years', input: { tls: { certValidity: '1y' } }, paths: ['tls.certValidity'], mentions: [/500ms or 2s/] },
  { name: 'certificates outliving their CA', input: { tls: { caValidity: '30d', certValidity: '365d' } }, paths: ['tls.certValidity'], mentions: [/cannot outlive the CA/] },
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

/**
 * Bad inputs only the validator refuses: each value is well-formed, and what is wrong is a rule the
 * schema does not say — a private range, no host bits, a bound on a value written with a unit
 * ("9GiB": the schema checks the form, its description the range), or a rule across fields.
 */
export const VALIDATOR_ONLY = new Set([
  'quota above 8GiB',
  'public subnet',
  'subnet with host bits',
  'subnet too small for 5',
  'election below 5x heartbeat',
  'revision retention not a number',
  'same client and stats port',
  'certificates outliving their CA',
]);
