// The members' data volumes as a snapshot restore handles them: a whole copy kept beside each while
// the restore runs, a volume emptied and filled with restored data, or with its kept copy again.
import { LABEL, labLabels, type MemberTopology, type Role } from '../config/topology.js';
import type { LabObjects } from './lab-objects.js';
import { toolLabels } from './snapshot.js';

/** A member's current data, kept while a restore is under way. */
export function keptVolumeName(volume: string): string {
  return `${volume}-before-restore`;
}

/** The kept copies a restore left, by name. */
export async function keptVolumes(runtime: LabObjects): Promise<string[]> {
  return (await runtime.engine.volumes.list([`${LABEL.lab}=${runtime.name}`, `${LABEL.role}=kept-data`])).map((v) => v.name).sort();
}

/** True when the member's kept copy exists. */
export async function hasKeptCopy(runtime: LabObjects, member: MemberTopology): Promise<boolean> {
  return (await runtime.engine.volumes.labels(keptVolumeName(member.volume))) !== undefined;
}

/** The member's data copied whole to its kept volume (made here), by a tool container of `image`. */
export async function keepCopy(runtime: LabObjects, member: MemberTopology, image: string): Promise<void> {
  const labels = { [LABEL.lab]: runtime.name, [LABEL.role]: 'kept-data' satisfies Role, [LABEL.member]: member.name, [LABEL.owner]: runtime.lab.owner };
  await runtime.engine.volumes.create(keptVolumeName(member.volume), labels);
  await runtime.engine.volumes.copy(member.volume, keptVolumeName(member.volume), image, toolLabels(runtime.name));
}

/** The member's volume emptied and filled with what a restore prepared in a (kept, exited) tool container. */
export async function fillFromPrepared(runtime: LabObjects, member: MemberTopology, prepared: { containerId: string; path: string }, image: string): Promise<void> {
  await emptyVolume(runtime, member);
  await runtime.engine.volumes.copyInto(prepared, member.volume, image, toolLabels(runtime.name));
}

/** The member's volume emptied and filled with its kept copy (which the caller has made sure is whole). */
export async function fillFromKept(runtime: LabObjects, member: MemberTopology, image: string): Promise<void> {
  await emptyVolume(runtime, member);
  await runtime.engine.volumes.copy(keptVolumeName(member.volume), member.volume, image, toolLabels(runtime.name));
}

/** Every kept copy removed. */
export async function removeKeptCopies(runtime: LabObjects): Promise<void> {
  for (const v of await keptVolumes(runtime)) await runtime.engine.volumes.remove(v);
}

/**
 * Removes a member volume's contents by making it anew with the labels compose gave it (there is no
 * other way without a shell in the image). A volume already gone (a crash between the two steps) is
 * made with the labels compose would give it.
 */
async function emptyVolume(runtime: LabObjects, member: MemberTopology): Promise<void> {
  const labels = (await runtime.engine.volumes.labels(member.volume)) ?? {
    ...labLabels(runtime.lab.spec, 'data', member.name),
    [LABEL.owner]: runtime.lab.owner,
    'com.docker.compose.project': runtime.topology.project,
    'com.docker.compose.volume': `${member.name}-data`,
  };
  await runtime.engine.volumes.remove(member.volume);
  await runtime.engine.volumes.create(member.volume, labels);
}
