import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/defaults.js';
import { resolveLocalSettings } from '../../src/config/local.js';

const spec = DEFAULTS;

describe('per-person settings', () => {
  it('fall back to the spec and make a stats password once', () => {
    const { settings, problems } = resolveLocalSettings(spec, { env: {} }, () => 'fresh');
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      clientPort: 2379,
      statsPort: 8404,
      bindAddress: '127.0.0.1',
      etcdImage: spec.etcd.image,
      haproxyImage: spec.haproxy.image,
      statsUser: 'etcd-lab',
      statsPassword: 'fresh',
    });
  });

  it('take flags over the environment over .env over the spec', () => {
    const dotenv = 'ETCD_LAB_CLIENT_PORT=1001\nETCD_LAB_STATS_PORT=1002\nETCD_LAB_ETCD_IMAGE=from-dotenv\n';
    const env = { ETCD_LAB_CLIENT_PORT: '2001', ETCD_LAB_ETCD_IMAGE: 'from-env' };
    const { settings } = resolveLocalSettings(spec, { dotenv, env, flags: { clientPort: '3001' } }, () => 'x');
    expect(settings.clientPort).toBe(3001);
    expect(settings.statsPort).toBe(1002);
    expect(settings.etcdImage).toBe('from-env');
  });

  it('keep the stats credentials of the previous generation', () => {
    const previous = 'ETCD_LAB_STATS_USER=alice-lab\nETCD_LAB_STATS_PASSWORD=kept-secret\n';
    const { settings } = resolveLocalSettings(spec, { env: {}, previous }, () => 'new');
    expect(settings.statsPassword).toBe('kept-secret');
    expect(settings.statsUser).toBe('alice-lab');
  });

  it('report bad values with where they came from', () => {
    const { problems } = resolveLocalSettings(spec, {
      env: { ETCD_LAB_STATS_PORT: 'http' },
      flags: { clientPort: '0', bindAddress: 'my-laptop' },
      dotenv: 'ETCD_LAB_STATS_PASSWORD=has:colon\n',
    });
    expect(problems.map((p) => p.path).sort()).toEqual(['$ETCD_LAB_STATS_PORT', '--client-port', 'ETCD_LAB_STATS_PASSWORD', '--bind-address'].sort());
  });
});
