// Hand-made histories with their verdicts argued from what etcd guarantees: linearizable requests
// on one revision counter, a change per request at its own revision, watches that deliver every
// change in order. The oracle confirms each verdict; the checker is then held to it.
// Revisions start after 100; c1, c2… are clients; times are [call, return] in ms.
import type { History } from '../../../src/checker/history.js';
import { broken, cas, closed, compacted, del, events, get, history, op, put, sget, stateAfter, txn, type ChangeSpec } from './histories.js';

export interface AuditCase {
  name: string;
  legal: boolean;
  why: string;
  /** For an illegal case: the rule it breaks. */
  kind?: string;
  history: History;
}

/** c1 puts k0=a, k1=b, k2=c one after another: revisions 101–103. */
const threePuts = {
  ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(1, put('k1', 'b'), [20, 30], { revision: 102 }), op(1, put('k2', 'c'), [40, 50], { revision: 103 })],
  changes: [
    [101, 'k0', 'a'],
    [102, 'k1', 'b'],
    [103, 'k2', 'c'],
  ] as ChangeSpec[],
};
const threeEvents = events(threePuts.changes);

/** c1 puts k0=a at 101, then k0=b at 102; both acknowledged before anything else starts. */
const twoPuts = {
  ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(1, put('k0', 'b'), [20, 30], { revision: 102 })],
  changes: [
    [101, 'k0', 'a'],
    [102, 'k0', 'b'],
  ] as ChangeSpec[],
};

const lostUpdates: AuditCase[] = [
  {
    name: 'lost update: an unknown CAS from the mod_revision another CAS already replaced lands later',
    legal: false,
    kind: 'lost-update',
    why: "c3's compare asked for mod_revision 101, but c2's CAS made k0's mod_revision 102; at 103, where c's change sits, etcd would have refused c3's CAS, so c overwrote b without its compare holding.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 101, 'b'), [20, 30], { revision: 102, succeeded: true }), op(3, cas('k0', 101, 'c'), [20, 40], 'unknown')],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
        [103, 'k0', 'c'],
      ],
    }),
  },
  {
    name: 'lost update: an unknown CAS lands after a later put moved the key',
    legal: false,
    kind: 'lost-update',
    why: "c2's CAS compares against 101; c1's put x (acknowledged at 102) moved k0's mod_revision to 102 before b's change at 103, so the compare could not hold there.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 101, 'b'), [20, 25], 'unknown'), op(1, put('k0', 'x'), [30, 40], { revision: 102 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'x'],
        [103, 'k0', 'b'],
      ],
    }),
  },
  {
    name: 'lost update: an unknown create-if-absent CAS on a key that exists',
    legal: false,
    kind: 'lost-update',
    why: 'A CAS on mod_revision 0 only applies while the key is absent; k0 held a since 101 (acknowledged before the CAS was called), so b at 102 broke the compare.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 0, 'b'), [20, 30], 'unknown')],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
    }),
  },
  {
    name: 'lost update: two acknowledged CAS from the same mod_revision both succeeded',
    legal: false,
    kind: 'lost-update',
    why: 'Both compared against 101; whichever committed second found mod_revision 102 and must have been refused, yet both answered succeeded.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 101, 'b'), [20, 30], { revision: 102, succeeded: true }), op(3, cas('k0', 101, 'c'), [20, 40], { revision: 103, succeeded: true })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
        [103, 'k0', 'c'],
      ],
    }),
  },
  {
    name: 'legal: the unknown CAS committed first, the acknowledged one was refused',
    legal: true,
    why: "Both compare against 101; c3's (unknown) committed at 102 while its compare held, so c2's, answered at 102, rightly found mod_revision 102 and was refused.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(3, cas('k0', 101, 'c'), [20, 40], 'unknown'), op(2, cas('k0', 101, 'b'), [20, 30], { revision: 102, succeeded: false })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'c'],
      ],
    }),
  },
  {
    name: 'legal: an unknown CAS whose compare held when it committed, and a CAS built on it',
    legal: true,
    why: "c2's CAS on 101 committed at 102 while k0's mod_revision was 101; c3's CAS on 102 then held at 103.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 101, 'b'), [20, 30], 'unknown'), op(3, cas('k0', 102, 'c'), [40, 50], { revision: 103, succeeded: true })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
        [103, 'k0', 'c'],
      ],
    }),
  },
  {
    name: 'legal: two CAS from the same mod_revision, one set, one refused',
    legal: true,
    why: 'Concurrent, both on 101: the first to commit (b at 102) wins; the other then sees mod_revision 102 and is refused, answered at 102.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 101, 'b'), [20, 30], { revision: 102, succeeded: true }), op(3, cas('k0', 101, 'c'), [20, 40], { revision: 102, succeeded: false })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
    }),
  },
];

const matchedByValue: AuditCase[] = [
  {
    name: "a put's value committed on another key",
    legal: false,
    kind: 'unexplained-change',
    why: "c1 put k0=a; a change k1=a was made by no request (a put changes only its own key), and c1's change to k0 never happened though acknowledged.",
    history: history({ ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 })], changes: [[101, 'k1', 'a']] }),
  },
  {
    name: "a put's value committed on two keys",
    legal: false,
    kind: 'unexplained-change',
    why: 'A single-key put makes exactly one change; k1=a at 101 came from no request.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 })],
      changes: [
        [101, 'k0', 'a'],
        [101, 'k1', 'a'],
      ],
    }),
  },
  {
    name: "a transaction's two values swapped between its keys",
    legal: false,
    kind: 'unexplained-change',
    why: 'The txn put k0=a and k1=b; the changes k0=b and k1=a were asked by nobody, even though the same values appear at the same revision.',
    history: history({
      ops: [op(1, txn({ k0: 'a', k1: 'b' }), [0, 10], { revision: 101 })],
      changes: [
        [101, 'k0', 'b'],
        [101, 'k1', 'a'],
      ],
    }),
  },
  {
    name: "a transaction's puts committed at two revisions",
    legal: false,
    kind: 'atomicity',
    why: 'A transaction is one revision: its puts commit together. k1=b at 102 means the txn applied in two parts.',
    history: history({
      ops: [op(1, txn({ k0: 'a', k1: 'b' }), [0, 10], { revision: 101 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k1', 'b'],
      ],
    }),
  },
  {
    name: 'legal: a transaction putting two keys at one revision',
    legal: true,
    why: 'Both puts of the txn commit at 101, the revision it was answered with.',
    history: history({
      ops: [op(1, txn({ k0: 'a', k1: 'b' }), [0, 10], { revision: 101 })],
      changes: [
        [101, 'k0', 'a'],
        [101, 'k1', 'b'],
      ],
    }),
  },
  {
    name: 'a delete event for a key that never existed, answered deleted 1',
    legal: false,
    kind: 'unexplained-change',
    why: 'etcd deletes only a key that exists, and a delete that finds nothing makes no revision; k0 was never written, so neither the event nor deleted: 1 can be.',
    history: history({ ops: [op(1, del('k0'), [0, 10], { revision: 101, deleted: 1 })], changes: [[101, 'k0', null]], final: { revision: 101, values: {} } }),
  },
  {
    name: 'a delete event for a key already deleted, answered deleted 1',
    legal: false,
    kind: 'unexplained-change',
    why: "c2's delete removed k0 at 102 and returned before c3's began; c3's found nothing, so it makes no revision and must say deleted 0.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, del('k0'), [20, 30], { revision: 102, deleted: 1 }), op(3, del('k0'), [40, 50], { revision: 103, deleted: 1 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', null],
        [103, 'k0', null],
      ],
    }),
  },
  {
    name: 'two separate requests sharing one revision',
    legal: false,
    kind: 'revision-shared',
    why: 'Each request that changes something takes its own revision; two puts by two clients cannot both commit at 101.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, put('k1', 'b'), [0, 10], { revision: 101 })],
      changes: [
        [101, 'k0', 'a'],
        [101, 'k1', 'b'],
      ],
    }),
  },
  {
    name: 'a put answered with another revision than its commit',
    legal: false,
    kind: 'revision-mismatch',
    why: "A put's response header carries the revision of its own change; a is committed at 101, the answer says 102.",
    history: history({ ops: [op(1, put('k0', 'a'), [0, 10], { revision: 102 })], changes: [[101, 'k0', 'a']] }),
  },
  {
    name: 'two concurrent puts answered with each other’s revision',
    legal: false,
    kind: 'revision-mismatch',
    why: 'a was committed at 101 and b at 102, but c1 was told 102 and c2 101: each answer names the other change.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 102 }), op(2, put('k1', 'b'), [0, 10], { revision: 101 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k1', 'b'],
      ],
    }),
  },
];

const impossibleUnknowns: AuditCase[] = [
  {
    name: 'an unknown delete of a key that never existed, committed',
    legal: false,
    kind: 'unexplained-change',
    why: 'k0 was never written, so a delete of it changes nothing and takes no revision; the delete event at 101 was made by no request.',
    history: history({ ops: [op(1, del('k0'), [0, 10], 'unknown')], changes: [[101, 'k0', null]], final: { revision: 101, values: {} } }),
  },
  {
    name: 'an unknown delete committed after the key was already deleted',
    legal: false,
    kind: 'unexplained-change',
    why: 'k0 was deleted at 102 and not written again; a second delete finds nothing and makes no revision, so the event at 103 is explained by nobody.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, del('k0'), [20, 30], { revision: 102, deleted: 1 }), op(3, del('k0'), [40, 50], 'unknown')],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', null],
        [103, 'k0', null],
      ],
    }),
  },
  {
    name: 'an unknown CAS on a mod_revision its key never had',
    legal: false,
    kind: 'lost-update',
    why: "Revision 102 changed k1, not k0, so k0's mod_revision was never 102 and c2's CAS on 102 could not apply; b at 103 is impossible.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(1, put('k1', 'x'), [20, 30], { revision: 102 }), op(2, cas('k0', 102, 'b'), [20, 40], 'unknown')],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k1', 'x'],
        [103, 'k0', 'b'],
      ],
    }),
  },
  {
    name: 'a write reported failed whose value was committed',
    legal: false,
    kind: 'failed-write-applied',
    why: 'failed means refused before it reached raft: it never commits, so a at 101 has no request.',
    history: history({ ops: [op(1, put('k0', 'a'), [0, 10], 'failed')], changes: [[101, 'k0', 'a']] }),
  },
  {
    name: 'legal: an unknown CAS whose compare failed is decided as not committed',
    legal: true,
    why: "c3's CAS on 101 won at 102; c2's, also on 101, could only have been refused afterwards (or never arrived): either way no change, which is what the watches show.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 101, 'b'), [20, 30], 'unknown'), op(3, cas('k0', 101, 'c'), [20, 40], { revision: 102, succeeded: true })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'c'],
      ],
    }),
  },
  {
    name: 'legal: an unknown delete not committed, a later read still sees the key',
    legal: true,
    why: 'The delete may never have reached raft; no event shows it and the read after it sees a at 101: consistent with not committed.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, del('k0'), [20, 30], 'unknown'), op(3, get('k0'), [40, 50], { revision: 101, value: 'a', modRevision: 101 })],
      changes: [[101, 'k0', 'a']],
    }),
  },
  {
    name: 'legal: an unknown delete committed while the key existed',
    legal: true,
    why: 'k0 held a, so the delete, committed after its call, removes it at 102.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, del('k0'), [20, 30], 'unknown')],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', null],
      ],
    }),
  },
  {
    name: 'legal: an unknown put not committed, a CAS proves it',
    legal: true,
    why: "c3's CAS on 101 succeeded after the unknown put's call, so that put had not committed before it; it never did (no event).",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, put('k0', 'x'), [20, 30], 'unknown'), op(3, cas('k0', 101, 'c'), [40, 50], { revision: 102, succeeded: true })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'c'],
      ],
    }),
  },
];

const finalRead: AuditCase[] = [
  {
    name: 'a read answered at revision 999, the final read at 101',
    legal: false,
    kind: 'final-state',
    why: 'The final read came after every answer, linearizably, at 101; no answer before it can carry a later revision (and nothing ever made 999).',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, get('k0'), [20, 30], { revision: 999, value: 'a', modRevision: 101 })],
      changes: [[101, 'k0', 'a']],
    }),
  },
  {
    name: 'the final read at 100 after a put acknowledged at 101',
    legal: false,
    kind: 'final-state',
    why: 'The put was acknowledged at 101 before the final read began, so the final read must be at 101 or later and show k0=a.',
    history: history({ ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 })], changes: [[101, 'k0', 'a']], final: { revision: 100, values: {} } }),
  },
  {
    name: 'a read answered at 102, the final read at 101',
    legal: false,
    kind: 'final-state',
    why: "c3's read returned revision 102 before the final read began; a linearizable final read after it cannot be at 101.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, put('k1', 'b'), [20, 30], 'unknown'), op(3, get('k1'), [40, 50], { revision: 102, value: 'b', modRevision: 102 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k1', 'b'],
      ],
      final: { revision: 101, values: stateAfter([[101, 'k0', 'a']]) },
    }),
  },
  {
    name: 'a final read that disagrees with the changes',
    legal: false,
    kind: 'final-state',
    why: 'At 102 k0 holds b (mod 102), the last change; the final read says a.',
    history: history({ ...twoPuts, final: { revision: 102, values: { k0: { value: 'a', modRevision: 101 } } } }),
  },
  {
    name: 'a final read missing a key the changes leave',
    legal: false,
    kind: 'final-state',
    why: 'Nothing deleted k0 after a was put at 101; the final read at 101 says k0 is absent.',
    history: history({ ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 })], changes: [[101, 'k0', 'a']], final: { revision: 101, values: {} } }),
  },
  {
    name: 'legal: an unknown write that lands after the final read',
    legal: true,
    why: 'An unknown write may commit at any time after its call, even after the final read; that read (101) saw a, and the watches, closed at 102, saw b later.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, put('k0', 'b'), [20, 30], 'unknown')],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
      final: { revision: 101, values: { k0: { value: 'a', modRevision: 101 } } },
    }),
  },
  {
    name: 'legal: the final read after an unknown write that committed',
    legal: true,
    why: 'The unknown put committed at 102 before the final read, which shows it.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, put('k0', 'b'), [20, 30], 'unknown')],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
    }),
  },
];

const compactedStreams: AuditCase[] = [
  {
    name: 'a compacted stream skipped a revision before its last event',
    legal: false,
    kind: 'watch-gap',
    why: 'Compaction ends a stream; it does not excuse holes in what it delivered: watch 2 delivered 103, so it owed 102 as well.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), compacted(2, [threeEvents[0]!, threeEvents[2]!], 104)] }),
  },
  {
    name: 'a compacted stream with a gap at its start',
    legal: false,
    kind: 'watch-gap',
    why: 'Watch 2 asked from 101 and delivered 102 and 103, skipping 101 though it was not compacted then (it delivered later revisions).',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), compacted(2, threeEvents.slice(1), 104)] }),
  },
  {
    name: 'a compacted stream that delivered a change never made',
    legal: false,
    kind: 'watch-mismatch',
    why: 'Revision 102 put k1=b; watch 2 says k1=zzz, a value nobody wrote.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), compacted(2, [threeEvents[0]!, { ...threeEvents[1]!, value: 'zzz' }], 104)] }),
  },
  {
    name: 'legal: a compacted stream that delivered a prefix',
    legal: true,
    why: 'Watch 2 delivered 101, then etcd told it 102 and on were compacted away: it owes nothing further.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), compacted(2, threeEvents.slice(0, 1), 103)] }),
  },
  {
    name: 'legal: a stream compacted before it delivered anything',
    legal: true,
    why: 'Its start revision was compacted at once; no events, no promises.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), compacted(2, [], 102)] }),
  },
];

const watchShapes: AuditCase[] = [
  {
    name: 'watch events out of order',
    legal: false,
    kind: 'watch-order',
    why: 'A watch delivers revisions in increasing order; watch 2 delivered 102 before 101.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), closed(2, [threeEvents[1]!, threeEvents[0]!, threeEvents[2]!], 103)] }),
  },
  {
    name: 'a duplicate watch event',
    legal: false,
    kind: 'watch-duplicate',
    why: 'Each change is delivered once per stream; watch 2 delivered 101 twice.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), closed(2, [threeEvents[0]!, threeEvents[0]!, ...threeEvents.slice(1)], 103)] }),
  },
  {
    name: 'one revision split over two watch responses',
    legal: false,
    kind: 'watch-order',
    why: "All events of one revision come in one response; the txn's two puts at 101 came in two.",
    history: (() => {
      const changes: ChangeSpec[] = [
        [101, 'k0', 'a'],
        [101, 'k1', 'b'],
      ];
      const split = events(changes).map((e, i) => ({ ...e, batch: 1 + i }));
      return history({ ops: [op(1, txn({ k0: 'a', k1: 'b' }), [0, 10], { revision: 101 })], changes, watches: [closed(1, events(changes), 101), closed(2, split, 101)] });
    })(),
  },
  {
    name: 'two streams disagreeing on a revision',
    legal: false,
    kind: 'watch-mismatch',
    why: 'Both streams cover 102, which has one content; watch 2 says k1 was deleted there, watch 1 that k1=b was put.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), closed(2, [threeEvents[0]!, { revision: 102, key: 'k1', type: 'delete', modRevision: 102, batch: 102 }, threeEvents[2]!], 103)] }),
  },
  {
    name: 'a gap in a closed stream',
    legal: false,
    kind: 'watch-gap',
    why: 'Watch 2 was closed having every change up to 103, yet it skipped 102.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), closed(2, [threeEvents[0]!, threeEvents[2]!], 103)] }),
  },
  {
    name: 'a change no request made, in every stream',
    legal: false,
    kind: 'unexplained-change',
    why: 'Revision 104 put k1=nobody, a value no client wrote; the streams agree, but nothing could have made it.',
    history: (() => {
      const changes: ChangeSpec[] = [...threePuts.changes, [104, 'k1', 'nobody']];
      return history({ ops: threePuts.ops, changes });
    })(),
  },
  {
    name: 'a watch event below the revision the stream asked from',
    legal: false,
    kind: 'watch-order',
    why: 'Watch 2 asked from 102; etcd never sends it revision 101.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), closed(2, threeEvents, 103, 102)] }),
  },
  {
    name: 'a put event with a mod_revision other than its revision, in every stream',
    legal: false,
    kind: 'watch-mismatch',
    why: "A put's event carries the key's new mod_revision, which is the revision of that put: 102, not 101.",
    history: (() => {
      const wrong = threeEvents.map((e) => (e.revision === 102 ? { ...e, modRevision: 101 } : e));
      return history({ ...threePuts, watches: [closed(1, wrong, 103), closed(2, wrong, 103)] });
    })(),
  },
  {
    name: 'legal: a broken stream resumed from where it was',
    legal: true,
    why: 'Watch 1 broke after 101; its resumption (watch 3, from 102) delivered the rest: together every change once, in order.',
    history: history({ ...threePuts, watches: [broken(1, threeEvents.slice(0, 1)), closed(3, threeEvents.slice(1), 103, 102), closed(2, threeEvents, 103)] }),
  },
  {
    name: 'legal: two streams batching revisions differently',
    legal: true,
    why: 'A response may carry several revisions; what matters is that no revision is split, and watch 2 keeps each whole.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), closed(2, threeEvents.map((e) => ({ ...e, batch: 1 })), 103)] }),
  },
  {
    name: 'legal: a stream from a later revision delivers only what follows',
    legal: true,
    why: 'Watch 2 asked from 102, so 101 is none of its business.',
    history: history({ ...threePuts, watches: [closed(1, threeEvents, 103), closed(2, threeEvents.slice(1), 103, 102)] }),
  },
];

const reads: AuditCase[] = [
  {
    name: 'a stale read',
    legal: false,
    kind: 'stale-read',
    why: 'b was acknowledged at 102 before the read began; a linearizable read must be at 102 or later, not 101.',
    history: history({ ...twoPuts, ops: [...twoPuts.ops, op(2, get('k0'), [40, 50], { revision: 101, value: 'a', modRevision: 101 })] }),
  },
  {
    name: 'revisions going backwards for one client',
    legal: false,
    kind: 'stale-read',
    why: 'c2 read revision 102, then (its next request) revision 101: the second read began after the first returned, so it cannot be older.',
    history: history({
      ops: [
        op(1, put('k0', 'a'), [0, 10], { revision: 101 }),
        op(1, put('k1', 'b'), [20, 30], { revision: 102 }),
        op(2, get('k1'), [40, 50], { revision: 102, value: 'b', modRevision: 102 }),
        op(2, get('k0'), [60, 70], { revision: 101, value: 'a', modRevision: 101 }),
      ],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k1', 'b'],
      ],
    }),
  },
  {
    name: 'a stale read across clients: one saw the new value, a later one the old',
    legal: false,
    kind: 'stale-read',
    why: "c2 saw b at 102 and returned before c3's read began; c3's read must be at 102 or later, even though the put itself was still in flight.",
    history: history({
      ops: [
        op(1, put('k0', 'a'), [0, 5], { revision: 101 }),
        op(1, put('k0', 'b'), [10, 60], { revision: 102 }),
        op(2, get('k0'), [20, 25], { revision: 102, value: 'b', modRevision: 102 }),
        op(3, get('k0'), [30, 35], { revision: 101, value: 'a', modRevision: 101 }),
      ],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
    }),
  },
  {
    name: 'a read of a value at the wrong revision',
    legal: false,
    kind: 'wrong-value',
    why: 'At 102 k0 held b; the read says a (mod 101) at 102.',
    history: history({ ...twoPuts, ops: [...twoPuts.ops, op(2, get('k0'), [40, 50], { revision: 102, value: 'a', modRevision: 101 })] }),
  },
  {
    name: 'a read of a key deleted before it began',
    legal: false,
    kind: 'wrong-value',
    why: 'k0 was deleted at 102 (acknowledged) before the read; at 102 it is absent.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(1, del('k0'), [20, 30], { revision: 102, deleted: 1 }), op(2, get('k0'), [40, 50], { revision: 102, value: 'a', modRevision: 101 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', null],
      ],
    }),
  },
  {
    name: 'a read that saw a write not yet asked for',
    legal: false,
    kind: 'order',
    why: 'The read returned at 10 with a (101); the put of a was called at 20: nothing can be read before it is written.',
    history: history({ ops: [op(2, get('k0'), [0, 10], { revision: 101, value: 'a', modRevision: 101 }), op(1, put('k0', 'a'), [20, 30], { revision: 101 })], changes: [[101, 'k0', 'a']] }),
  },
  {
    name: 'legal: a serializable read answered stale',
    legal: true,
    why: 'A serializable read is served from one member’s state, which may lag: 101 is allowed after b was acknowledged at 102, as long as a is what k0 held at 101.',
    history: history({ ...twoPuts, ops: [...twoPuts.ops, op(2, sget('k0'), [40, 50], { revision: 101, value: 'a', modRevision: 101 })] }),
  },
  {
    name: 'a serializable read of a value never held at its revision',
    legal: false,
    kind: 'wrong-value',
    why: 'Stale is allowed, inconsistent is not: at 101 k0 held a, never b (b came at 102).',
    history: history({ ...twoPuts, ops: [...twoPuts.ops, op(2, sget('k0'), [40, 50], { revision: 101, value: 'b', modRevision: 102 })] }),
  },
  {
    name: 'a serializable read from the future',
    legal: false,
    kind: 'order',
    why: 'The read returned at 10 with revision 101, but the put that made 101 was only called at 20: no member could have applied it yet.',
    history: history({ ops: [op(2, sget('k0'), [0, 10], { revision: 101, value: 'a', modRevision: 101 }), op(1, put('k0', 'a'), [20, 30], { revision: 101 })], changes: [[101, 'k0', 'a']] }),
  },
  {
    name: 'legal: a read concurrent with a put sees the old value',
    legal: true,
    why: 'The read overlaps the put (20–50), so it may take effect before it: a at 101.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(1, put('k0', 'b'), [20, 50], { revision: 102 }), op(2, get('k0'), [25, 30], { revision: 101, value: 'a', modRevision: 101 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
    }),
  },
  {
    name: 'legal: a read concurrent with a put sees the new value',
    legal: true,
    why: 'The read overlaps the put and may take effect after it: b at 102, before the put even returned.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(1, put('k0', 'b'), [20, 50], { revision: 102 }), op(2, get('k0'), [25, 30], { revision: 102, value: 'b', modRevision: 102 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
    }),
  },
];

const lookAlikes: AuditCase[] = [
  {
    name: 'legal: concurrent puts, the later-called one committed first',
    legal: true,
    why: 'Overlapping calls may take effect in either order; c2 (called at 5) committed at 101, c1 (called at 0) at 102.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 60], { revision: 102 }), op(2, put('k0', 'b'), [5, 50], { revision: 101 }), op(3, get('k0'), [10, 70], { revision: 102, value: 'a', modRevision: 102 })],
      changes: [
        [101, 'k0', 'b'],
        [102, 'k0', 'a'],
      ],
    }),
  },
  {
    name: 'legal: an unknown write committed after a read that did not see it',
    legal: true,
    why: "The put gave up at 30 but was still in flight; the read at 40–50 saw only a, and the put committed at 102 afterwards, as the read at 60–70 shows.",
    history: history({
      ops: [
        op(1, put('k0', 'a'), [0, 10], { revision: 101 }),
        op(2, put('k0', 'b'), [20, 30], 'unknown'),
        op(3, get('k0'), [40, 50], { revision: 101, value: 'a', modRevision: 101 }),
        op(3, get('k0'), [60, 70], { revision: 102, value: 'b', modRevision: 102 }),
      ],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', 'b'],
      ],
    }),
  },
  {
    name: "legal: an unknown write committed after the same client's next request",
    legal: true,
    why: 'A client that gave up moves on, but its request may still commit: c2’s put of b lands at 102, after c2’s own later put of k1=x at 101.',
    history: history({
      ops: [op(2, put('k0', 'b'), [0, 10], 'unknown'), op(2, put('k1', 'x'), [20, 30], { revision: 101 })],
      changes: [
        [101, 'k1', 'x'],
        [102, 'k0', 'b'],
      ],
    }),
  },
  {
    name: 'legal: an unknown write that never committed',
    legal: true,
    why: 'No event, no read shows b: it never reached raft.',
    history: history({ ops: [op(1, put('k0', 'b'), [0, 10], 'unknown'), op(2, get('k0'), [20, 30], { revision: 100 })] }),
  },
  {
    name: 'legal: racing deletes, one deleted 1, the other 0 at the same revision',
    legal: true,
    why: "c3's delete removed k0 at 102; c8's, concurrent, ran just after, found it gone, changed nothing and was answered at the current revision, 102.",
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(8, del('k0'), [20, 31], { revision: 102, deleted: 0 }), op(3, del('k0'), [21, 30], { revision: 102, deleted: 1 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', null],
      ],
    }),
  },
  {
    name: 'racing deletes that both deleted 1',
    legal: false,
    kind: 'applied-twice',
    why: 'Only one delete can find k0; there is one delete event, at 102, and the other delete cannot have removed anything.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(8, del('k0'), [20, 31], { revision: 102, deleted: 1 }), op(3, del('k0'), [21, 30], { revision: 102, deleted: 1 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', null],
      ],
    }),
  },
  {
    name: 'a delete answered deleted 0 at a revision where the key existed',
    legal: false,
    kind: 'wrong-value',
    why: 'At 101 k0 held a, so a delete answered at 101 would have deleted it and made 102; deleted 0 at 101 is impossible.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(8, del('k0'), [20, 31], { revision: 101, deleted: 0 }), op(3, del('k0'), [21, 30], { revision: 102, deleted: 1 })],
      changes: [
        [101, 'k0', 'a'],
        [102, 'k0', null],
      ],
    }),
  },
  {
    name: 'legal: a refused CAS and a delete of nothing, answered at the current revision',
    legal: true,
    why: 'Neither changes anything, so neither takes a revision: both are answered at 101, the store’s revision.',
    history: history({
      ops: [op(1, put('k0', 'a'), [0, 10], { revision: 101 }), op(2, cas('k0', 0, 'x'), [20, 30], { revision: 101, succeeded: false }), op(2, del('k1'), [40, 50], { revision: 101, deleted: 0 })],
      changes: [[101, 'k0', 'a']],
    }),
  },
];

export const auditCases: AuditCase[] = [...lostUpdates, ...matchedByValue, ...impossibleUnknowns, ...finalRead, ...compactedStreams, ...watchShapes, ...reads, ...lookAlikes];
