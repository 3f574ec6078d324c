// The JSON Schema editors use for etcd-lab.yaml: shipped in the package, built from the validator's
// own fields, and in agreement with it on the documented example, the defaults and every bad input.
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readSpec, specJsonSchema } from '../../src/config/read.js';
import { SCHEMA_FILE } from '../../src/render/templates.js';
import { BAD_SPECS, VALIDATOR_ONLY } from './bad-specs.js';
import { expectGolden } from './golden.js';
import { documentedExampleSpec } from './documented-example.js';

const schema = specJsonSchema();
const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);
const errors = () => (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

describe('the etcd-lab.yaml JSON Schema', () => {
  it('the shipped file is the one the code builds', () => {
    expectGolden(SCHEMA_FILE, `${JSON.stringify(schema, null, 2)}\n`);
  });

  it.each([
    ['the documented example', () => parse(documentedExampleSpec())],
    ['the commented template init writes (every default)', () => parse(readFileSync(new URL('../../lab-templates/etcd-lab.yaml', import.meta.url), 'utf8'))],
    ['an empty file', () => ({})],
    ["this repository's own etcd-lab.yaml", () => parse(readFileSync(new URL('../../etcd-lab.yaml', import.meta.url), 'utf8'))],
  ])('accepts %s, as the validator does', (_what, input) => {
    expect(readSpec(input()).problems).toEqual([]);
    expect(validate(input()), errors().join('; ')).toBe(true);
  });

  it('every default in it is one the validator reads back as the default', () => {
    const defaults: Record<string, unknown> = {};
    const walk = (node: Record<string, unknown>, target: Record<string, unknown>) => {
      for (const [key, child] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (child.type === 'object') walk(child, (target[key] = {}) as Record<string, unknown>);
        else if ('default' in child) target[key] = child.default;
      }
    };
    walk(schema, defaults);
    expect(validate(defaults), errors().join('; ')).toBe(true);
    expect(readSpec(defaults)).toEqual(readSpec({}));
  });

  it.each(BAD_SPECS.filter((b) => !VALIDATOR_ONLY.has(b.name)))('rejects what the validator rejects: $name', ({ input }) => {
    expect(readSpec(input).problems).not.toEqual([]);
    expect(validate(input)).toBe(false);
  });

  it.each(BAD_SPECS.filter((b) => VALIDATOR_ONLY.has(b.name)))('leaves to the validator what a schema does not say: $name', ({ input }) => {
    // Well-formed for the schema; the validator's own rule is what refuses it.
    expect(validate(input), errors().join('; ')).toBe(true);
    expect(readSpec(input).problems).not.toEqual([]);
  });
});
