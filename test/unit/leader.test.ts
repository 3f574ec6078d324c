// The one rule for "the leader", over tables of what each member says.
import { describe, expect, it } from 'vitest';
import { electedLeader, type MemberView } from '../../src/runtime/leader.js';

const v = (member: string, id: string, leaderId: string, raftTerm: number): MemberView => ({ member, memberId: id, leaderId, raftTerm });
const silent = (member: string): MemberView => ({ member });

describe('electedLeader: the member a quorum of answering members names in the highest term', () => {
  const cases: { name: string; size: number; views: MemberView[]; leader?: { id: string; member?: string; term: number } }[] = [
    { name: 'all agree', size: 3, views: [v('etcd1', '1', '2', 4), v('etcd2', '2', '2', 4), v('etcd3', '3', '2', 4)], leader: { id: '2', member: 'etcd2', term: 4 } },
    {
      name: 'a cut-off member still claims the old leader (itself) in an old term',
      size: 3,
      views: [v('etcd1', '1', '1', 4), v('etcd2', '2', '3', 5), v('etcd3', '3', '3', 5)],
      leader: { id: '3', member: 'etcd3', term: 5 },
    },
    {
      name: 'the first member listed names a stale leader: not taken because it comes first',
      size: 5,
      views: [v('etcd1', '1', '1', 7), v('etcd2', '2', '1', 7), v('etcd3', '3', '4', 8), v('etcd4', '4', '4', 8), v('etcd5', '5', '4', 8)],
      leader: { id: '4', member: 'etcd4', term: 8 },
    },
    {
      name: 'two terms in flight: the old leader still has a quorum of followers, one member moved on without a leader',
      size: 3,
      views: [v('etcd1', '1', '1', 4), v('etcd2', '2', '1', 4), v('etcd3', '3', '0', 5)],
      leader: { id: '1', member: 'etcd1', term: 4 },
    },
    {
      name: 'two terms in flight, no quorum in either',
      size: 5,
      views: [v('etcd1', '1', '1', 4), v('etcd2', '2', '1', 4), v('etcd3', '3', '3', 5), v('etcd4', '4', '3', 5), silent('etcd5')],
    },
    {
      name: 'a member without pre-vote raised its term alone (etcd 3.4 cut off): the highest term is not the leader',
      size: 3,
      views: [v('etcd1', '1', '0', 19), v('etcd2', '2', '2', 5), v('etcd3', '3', '2', 5)],
      leader: { id: '2', member: 'etcd2', term: 5 },
    },
    { name: 'no quorum answers', size: 3, views: [v('etcd1', '1', '1', 3), silent('etcd2'), silent('etcd3')] },
    { name: 'nobody answers', size: 3, views: [silent('etcd1'), silent('etcd2'), silent('etcd3')] },
    { name: 'an election: nobody names a leader', size: 3, views: [v('etcd1', '1', '0', 6), v('etcd2', '2', '0', 6), v('etcd3', '3', '0', 5)] },
    {
      name: 'the leader was just killed: its followers still name it, it does not answer',
      size: 3,
      views: [silent('etcd1'), v('etcd2', '2', '1', 4), v('etcd3', '3', '1', 4)],
      leader: { id: '1', term: 4 },
    },
    { name: 'one member', size: 1, views: [v('etcd1', '1', '1', 2)], leader: { id: '1', member: 'etcd1', term: 2 } },
    {
      name: 'a quorum of the cluster, not of those answering: 2 of 5 agreeing is no leader',
      size: 5,
      views: [v('etcd1', '1', '1', 3), v('etcd2', '2', '1', 3), silent('etcd3'), silent('etcd4'), silent('etcd5')],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = electedLeader(c.views, c.size);
      if (!c.leader) expect(got).toBeUndefined();
      else expect({ id: got?.id, member: got?.member, term: got?.term }).toEqual({ id: c.leader.id, member: c.leader.member, term: c.leader.term });
    });
  }

  it('lists the members that follow it', () => {
    const got = electedLeader([v('etcd1', '1', '1', 4), v('etcd2', '2', '3', 5), v('etcd3', '3', '3', 5)], 3);
    expect(got?.followers.sort()).toEqual(['etcd2', 'etcd3']);
  });
});
