// spec → every generated file, as a name → content map. Pure: no disk, no Docker.
import type { LocalSettings } from '../config/local.js';
import type { LabSpec } from '../config/types.js';
import { renderCompose } from './compose.js';
import { renderEnvFile } from './env.js';
import { renderHaproxyCfg } from './haproxy.js';
import { renderKindConfig, type ResolvedEndpointMode } from './kind.js';

export const COMPOSE_FILE = 'docker-compose.yml';
export const HAPROXY_FILE = 'haproxy.cfg';
export const KIND_FILE = 'kind-config.yaml';
export const ENV_FILE = '.env';

export interface RenderInput {
  spec: LabSpec;
  local: LocalSettings;
  endpointMode: ResolvedEndpointMode;
  /** The spec file this lab belongs to (see LABEL.owner). */
  owner: string;
}

/** Files in a stable order; the shareable ones first, the per-person .env last. */
export function renderLab({ spec, local, endpointMode, owner }: RenderInput): Map<string, string> {
  return new Map([
    [COMPOSE_FILE, renderCompose(spec)],
    [HAPROXY_FILE, renderHaproxyCfg(spec)],
    [KIND_FILE, renderKindConfig(spec, endpointMode, local.clientPort)],
    [ENV_FILE, renderEnvFile(local, owner)],
  ]);
}
