import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ValidateFunction } from 'ajv';
import desiredSchema from '../../schema/desired-state.schema.json' with { type: 'json' };
import configSchema from '../../schema/agent-config.schema.json' with { type: 'json' };
import { loadValidator, schemaHash, standaloneSource, type SchemaName } from '../../agent/core/schema-validators.js';

const require = createRequire(import.meta.url);
const ROOT = resolve(import.meta.dirname, '../..');
// inside the repository, so the generated code finds ajv's runtime helpers in node_modules
mkdirSync(join(ROOT, '.cache'), { recursive: true });
const dir = mkdtempSync(join(ROOT, '.cache/validators-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function precompiled(name: SchemaName, schema: object): ValidateFunction {
  const file = join(dir, `${name}.cjs`);
  writeFileSync(file, standaloneSource(name, schema));
  return require(file) as ValidateFunction;
}

const D = `sha256:${'a'.repeat(64)}`;
const documents: [string, unknown][] = [
  ['valid', { name: 'x', services: { web: { image: `web:1@${D}`, network_mode: 'host', 'x-agent': { policy: 'auto' } } } }],
  ['unknown key', { services: { web: { image: 'web:1', colour: 'red' } } }],
  ['bad union (anyOf titles)', { services: { web: { image: 'web:1', ports: [{ target: 'eighty' }], 'x-agent': { policy: 'sometimes' } } } }],
  ['wrong types everywhere', { services: { web: { image: 3, environment: [1, 2], restart: 'often', 'x-agent': { health: { timeout: 'soon' } } } } }],
];

describe('standalone validators written by the build', () => {
  it.each(documents)('give the errors of a run-time compile: %s', (_name, doc) => {
    const runtime = loadValidator('desired-state', desiredSchema);
    const built = precompiled('desired-state', desiredSchema);
    expect(built(doc)).toBe(runtime(doc));
    expect(built.errors ?? null).toEqual(runtime.errors ?? null);
  });

  it('the configuration schema too', () => {
    const doc = { source: { dir: 3 }, http: { listen: true }, extra: 1 };
    const runtime = loadValidator('agent-config', configSchema);
    const built = precompiled('agent-config', configSchema);
    expect(built(doc)).toBe(false);
    expect(runtime(doc)).toBe(false);
    expect(built.errors).toHaveLength(3);
    expect(built.errors).toEqual(runtime.errors);
  });

  it('a change of schema or options changes the hash, so a stale validator is never used', () => {
    const h = schemaHash('desired-state', desiredSchema);
    expect(schemaHash('desired-state', { ...desiredSchema, title: 'changed' })).not.toBe(h);
    expect(schemaHash('agent-config', desiredSchema)).not.toBe(h);
  });
});
