// Flag → LoadOptions mapping shared by every command that reads the spec.
import type { LoadOptions } from '../spec/load.js';
import type { SpecOverride } from '../spec/read.js';

export interface SpecFlags {
  config?: string;
  out?: string;
  name?: string;
  members?: string;
  subnet?: string;
  clientPort?: string;
  statsPort?: string;
  bindAddress?: string;
  etcdImage?: string;
  haproxyImage?: string;
}

/** Flags that change the shared spec for this run, and the spec path each one sets. */
const SPEC_FLAGS: [keyof SpecFlags, string, string][] = [
  ['name', 'name', '--name'],
  ['members', 'members', '--members'],
  ['subnet', 'network.subnet', '--subnet'],
];

export function loadOptionsFrom(flags: SpecFlags): LoadOptions {
  const overrides: SpecOverride[] = [];
  for (const [flag, path, source] of SPEC_FLAGS) {
    const value = flags[flag];
    if (value !== undefined) overrides.push({ path, value: /^\d+$/.test(value) ? Number(value) : value, source });
  }
  return {
    config: flags.config,
    out: flags.out,
    overrides,
    local: {
      clientPort: flags.clientPort,
      statsPort: flags.statsPort,
      bindAddress: flags.bindAddress,
      etcdImage: flags.etcdImage,
      haproxyImage: flags.haproxyImage,
    },
  };
}
