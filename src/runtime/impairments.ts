// The lab's network impairments as they stand: helper containers found by label, each holding one
// member's impairment (loss, blackhole or delay) for as long as it runs. Making and removing them is
// an operation: lab/network-faults.ts.
import { LABEL, type Role } from '../config/topology.js';
import type { ContainerInfo } from '../engine/engine.js';
import type { LabRuntime } from './lab.js';

export const IMPAIRMENT_KINDS = ['loss', 'blackhole', 'delay'] as const;
export type ImpairmentKind = (typeof IMPAIRMENT_KINDS)[number];
/** The faults a helper container holds in a member's namespace (its image built first). */
export const isImpairment = (kind: string): kind is ImpairmentKind => (IMPAIRMENT_KINDS as readonly string[]).includes(kind);
export type Impairment = { kind: 'loss'; percent: number } | { kind: 'blackhole' } | { kind: 'delay'; ms: number };

/** The labels that say which impairment a helper holds, and in which member container's namespace. */
export const KIND_LABEL = 'io.etcd-lab.impairment';
export const TARGET_LABEL = 'io.etcd-lab.impaired-container';

/**
 * The lab's impairments in force: helpers running in the namespace of their member's current
 * container. Any other helper (stopped, or its member restarted or replaced since) holds no rules
 * and is removed here, so it is never counted, refused over, or left behind.
 */
export async function impairments(runtime: LabRuntime): Promise<ContainerInfo[]> {
  const all = await runtime.containers();
  const helpers = all.filter((c) => c.labels[LABEL.role] === ('impairment' satisfies Role));
  if (helpers.length === 0) return [];
  const members = new Map(all.filter((c) => c.labels[LABEL.role] === 'etcd').map((c) => [c.labels[LABEL.member], c]));
  const live: ContainerInfo[] = [];
  for (const helper of helpers) {
    const member = members.get(helper.labels[LABEL.member]);
    if (helper.state === 'running' && member?.state !== 'exited' && member?.id === helper.labels[TARGET_LABEL]) live.push(helper);
    else await runtime.removeContainer(helper, 0).catch(() => {});
  }
  return live;
}

export function impairmentOf(helper: ContainerInfo): { member: string; kind: ImpairmentKind } {
  const kind = helper.labels[KIND_LABEL];
  return { member: helper.labels[LABEL.member] ?? '', kind: kind !== undefined && isImpairment(kind) ? kind : 'blackhole' };
}

