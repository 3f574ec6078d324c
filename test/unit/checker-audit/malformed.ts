// Inputs a history file must never be judged on: malformed JSON shapes and values no run could
// record. Each names the field a good error message must point at (`mentions`). (A watch event below
// its stream's fromRevision is not here: that is etcd breaking its word, a verdict — checker.test.ts.)
import type { History } from '../../../src/checker/history.js';
import { del, get, history, op, put } from './histories.js';

export interface MalformedInput {
  name: string;
  /** What `JSON.parse` of the file gave. */
  input: unknown;
  /** What the error message should name: the field's path. */
  mentions: RegExp;
}

/**
 * The legal history every malformed input is one defect away from:
 * operations[0] put k0=a @101, [1] get k0 @101, [2] put k1=b @102, [3] delete k1 unknown (not committed).
 */
export const validBase: History = history({
  ops: [
    op(1, put('k0', 'a'), [0, 10], { revision: 101 }),
    op(2, get('k0'), [20, 30], { revision: 101, value: 'a', modRevision: 101 }),
    op(1, put('k1', 'b'), [40, 50], { revision: 102 }),
    op(3, del('k1'), [60, 70], 'unknown'),
  ],
  changes: [
    [101, 'k0', 'a'],
    [102, 'k1', 'b'],
  ],
});

/** The base as a JSON value, changed by `edit` (which may replace it whole). */
function oneDefect(edit: (h: any) => unknown): unknown {
  const h = JSON.parse(JSON.stringify(validBase));
  const replaced = edit(h);
  return replaced === undefined ? h : replaced;
}

export const malformedInputs: MalformedInput[] = [
  { name: 'JSON null', input: JSON.parse('null'), mentions: /history|object/i },
  { name: 'an array instead of an object', input: JSON.parse('[]'), mentions: /object/i },
  { name: 'another format', input: oneDefect((h) => void (h.format = 'etcd-lab-history/1')), mentions: /format/ },
  { name: 'no final', input: oneDefect((h) => void delete h.final), mentions: /final/ },
  { name: 'no keys', input: oneDefect((h) => void delete h.keys), mentions: /keys/ },
  { name: 'no operations', input: oneDefect((h) => void delete h.operations), mentions: /operations/ },
  { name: 'no watches', input: oneDefect((h) => void delete h.watches), mentions: /watches/ },
  { name: 'no faults', input: oneDefect((h) => void delete h.faults), mentions: /faults/ },
  { name: 'an operation without a request', input: oneDefect((h) => void delete h.operations[1].request), mentions: /operations\[1\]\.request/ },
  { name: 'an unknown op', input: oneDefect((h) => void (h.operations[0].request.op = 'range')), mentions: /operations\[0\]\.request\.op/ },
  { name: 'outcome "OK" (not ok)', input: oneDefect((h) => void (h.operations[0].outcome = 'OK')), mentions: /operations\[0\]\.outcome/ },
  { name: 'callMs as a string', input: oneDefect((h) => void (h.operations[2].callMs = '40')), mentions: /operations\[2\]\.callMs/ },
  { name: 'returnMs before callMs', input: oneDefect((h) => void (h.operations[1].returnMs = 15)), mentions: /operations\[1\]\.returnMs/ },
  { name: 'callMs 1e400 (Infinity once parsed)', input: JSON.parse(JSON.stringify(validBase).replace('"callMs":0', '"callMs":1e400')), mentions: /operations\[0\]\.callMs/ },
  { name: 'returnMs 1e15 (31,000 years into the run)', input: oneDefect((h) => void (h.operations[0].returnMs = 1e15)), mentions: /operations\[0\]\.returnMs/ },
  { name: 'callMs null (what JSON.stringify makes of NaN)', input: oneDefect((h) => void (h.operations[1].callMs = null)), mentions: /operations\[1\]\.callMs/ },
  { name: 'returnMs "NaN"', input: oneDefect((h) => void (h.operations[2].returnMs = 'NaN')), mentions: /operations\[2\]\.returnMs/ },
  { name: 'an ok operation without a response', input: oneDefect((h) => void delete h.operations[1].response), mentions: /operations\[1\]\.response/ },
  { name: "a response whose op differs from the request's", input: oneDefect((h) => void (h.operations[1].response = { op: 'put', revision: 101 })), mentions: /operations\[1\]\.response\.op/ },
  { name: 'a failed operation with a response', input: oneDefect((h) => void Object.assign(h.operations[3], { outcome: 'failed', response: { op: 'delete', revision: 102, deleted: 0 } })), mentions: /operations\[3\]\.response/ },
  { name: 'a non-integer response revision', input: oneDefect((h) => void (h.operations[0].response.revision = 101.5)), mentions: /operations\[0\]\.response\.revision/ },
  { name: 'a negative startRevision', input: oneDefect((h) => void (h.startRevision = -1)), mentions: /startRevision/ },
  { name: 'a negative event revision', input: oneDefect((h) => void (h.watches[0].events[0].revision = -101)), mentions: /watches\[0\]\.events\[0\]\.revision/ },
  { name: 'a final revision below the start', input: oneDefect((h) => void (h.final.revision = 99)), mentions: /final\.revision/ },
  { name: 'a final revision as a string', input: oneDefect((h) => void (h.final.revision = '102')), mentions: /final\.revision/ },
  { name: 'a final value without its mod_revision', input: oneDefect((h) => void delete h.final.values.k0.modRevision), mentions: /final\.values\.k0\.modRevision/ },
  { name: 'two operations with one id', input: oneDefect((h) => void (h.operations[1].id = 1)), mentions: /operations\[1\]\.id/ },
  { name: 'one value written by two requests', input: oneDefect((h) => void (h.operations[2].request.value = 'a')), mentions: /operations\[2\]\.request\.value/ },
  { name: 'a key outside the key space', input: oneDefect((h) => void (h.operations[0].request.key = 'elsewhere')), mentions: /operations\[0\]\.request\.key/ },
  { name: 'a CAS on a negative mod_revision', input: oneDefect((h) => void (h.operations[3].request = { op: 'cas', key: 'k1', modRevision: -5, value: 'z' })), mentions: /operations\[3\]\.request\.modRevision/ },
  { name: 'a transaction without a success branch', input: oneDefect((h) => void (h.operations[3].request = { op: 'txn' })), mentions: /operations\[3\]\.request\.success/ },
  { name: 'a transaction putting one key twice', input: oneDefect((h) => void (h.operations[3].request = { op: 'txn', success: [{ op: 'put', key: 'k2', value: 'x' }, { op: 'put', key: 'k2', value: 'y' }] })), mentions: /operations\[3\]\.request\.success\[1\]/ },
  { name: 'a delete answered deleted 2 (one key at most)', input: oneDefect((h) => void Object.assign(h.operations[3], { outcome: 'ok', response: { op: 'delete', revision: 103, deleted: 2 } })), mentions: /operations\[3\]\.response\.deleted/ },
  { name: "a stream ended 'closed' without upToRevision", input: oneDefect((h) => void delete h.watches[0].upToRevision), mentions: /watches\[0\]\.upToRevision/ },
  { name: "a stream ended 'compacted' without compactRevision", input: oneDefect((h) => void Object.assign(h.watches[1], { end: 'compacted', upToRevision: undefined })), mentions: /watches\[1\]\.compactRevision/ },
  { name: 'an unknown stream end', input: oneDefect((h) => void (h.watches[0].end = 'done')), mentions: /watches\[0\]\.end/ },
  { name: 'an event of an unknown type', input: oneDefect((h) => void (h.watches[0].events[1].type = 'modify')), mentions: /watches\[0\]\.events\[1\]\.type/ },
  { name: 'a put event without its value', input: oneDefect((h) => void delete h.watches[0].events[0].value), mentions: /watches\[0\]\.events\[0\]\.value/ },
  { name: 'two streams with one id', input: oneDefect((h) => void (h.watches[1].id = 1)), mentions: /watches\[1\]\.id/ },
];
