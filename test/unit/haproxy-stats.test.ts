import { describe, expect, it } from 'vitest';
import { parseStatsCsv, splitLeaderRoutes } from '../../src/protocol/haproxy-stats.js';

// The columns HAProxy's stats CSV starts with, and the ones read here; the rest are left empty.
const HEADER = '# pxname,svname,qcur,status,check_status';
const csv = (rows: string[][]) => [HEADER, ...rows.map((r) => r.join(','))].join('\n') + '\n';

describe('splitLeaderRoutes: the lab lists each member under its own name and under its leading name', () => {
  it('keeps the members as backends and names the member HAProxy routes to as leader', () => {
    const servers = parseStatsCsv(
      csv([
        ['etcd_members', 'etcd1-leading', '0', 'DOWN', 'L7RSP'],
        ['etcd_members', 'etcd2-leading', '0', 'UP', 'L7OK'],
        ['etcd_members', 'etcd1', '0', 'UP', ''],
        ['etcd_members', 'etcd2', '0', 'UP', ''],
        ['etcd_members', 'BACKEND', '0', 'UP', ''],
        ['etcd_health', 'etcd1', '0', 'DOWN', 'L7RSP'],
      ]),
    );
    expect(splitLeaderRoutes(servers)).toEqual({
      backends: [
        { name: 'etcd1', status: 'UP', checkStatus: '', up: true },
        { name: 'etcd2', status: 'UP', checkStatus: '', up: true },
      ],
      leaderRoutes: ['etcd2'],
    });
  });

  it('says there is no leader route while none leads, and nothing about routes where the config has none', () => {
    const during = parseStatsCsv(csv([['etcd_members', 'etcd1-leading', '0', 'DOWN 1/2', 'L7RSP'], ['etcd_members', 'etcd1', '0', 'UP', '']]));
    expect(splitLeaderRoutes(during).leaderRoutes).toEqual([]);
    const exported = parseStatsCsv(csv([['etcd_members', 'etcd1', '0', 'UP', 'L7OK']]));
    expect(splitLeaderRoutes(exported)).toEqual({ backends: [{ name: 'etcd1', status: 'UP', checkStatus: 'L7OK', up: true }] });
  });
});
