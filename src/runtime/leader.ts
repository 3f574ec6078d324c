// The one rule for "the leader", used by every command: the member that a quorum of the answering
// members names in the highest term. A member cut off from the majority keeps naming the leader it
// last heard (and, on etcd 3.4 without pre-vote, keeps raising its own term without any leader),
// so neither "the first member that names a leader" nor "the highest term seen" is safe alone.
import { quorumOf } from '../config/topology.js';

/** One member's answer to a status call; `memberId` undefined when it did not answer. */
export interface MemberView {
  member: string;
  memberId?: string;
  /** The leader this member follows ("0": none). */
  leaderId?: string;
  raftTerm?: number;
}

export interface ElectedLeader {
  /** etcd's member ID (decimal). */
  id: string;
  /** The lab's name for it, when the leader itself answered (a leader just killed does not). */
  member?: string;
  term: number;
  /** The answering members that name it in that term, the leader included. */
  followers: string[];
}

/**
 * The leader a quorum of `clusterSize` names, in the highest term any quorum agrees on; undefined
 * while no quorum agrees (an election in flight, or quorum lost). Two quorums cannot name different
 * leaders in one term, so the highest agreed term is the newest leader.
 */
export function electedLeader(views: MemberView[], clusterSize: number): ElectedLeader | undefined {
  const needed = quorumOf(clusterSize);
  const named = new Map<string, { id: string; term: number; followers: string[] }>();
  for (const v of views) {
    if (v.memberId === undefined || v.leaderId === undefined || v.leaderId === '0' || v.raftTerm === undefined) continue;
    const key = `${v.raftTerm}/${v.leaderId}`;
    const entry = named.get(key) ?? { id: v.leaderId, term: v.raftTerm, followers: [] };
    entry.followers.push(v.member);
    named.set(key, entry);
  }
  const agreed = [...named.values()].filter((e) => e.followers.length >= needed).sort((a, b) => b.term - a.term)[0];
  if (!agreed) return undefined;
  const member = views.find((v) => v.memberId === agreed.id)?.member;
  return { ...agreed, ...(member !== undefined ? { member } : {}) };
}
