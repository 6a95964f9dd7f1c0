/**
 * Every desired state the project ships or writes is a Compose file by the Compose
 * Specification's own schema (../shared/compose-spec/compose-spec.json): the reference stack,
 * the demo's, and a revert commit's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ErrorObject, Options } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { restoreServiceBlock } from '../../agent/revert/edit.js';
import { stackYaml } from '../../scripts/demo-stack.js';
import type { FixtureImages } from '../harness/images.js';

// ajv is CommonJS: its class through require, as agent/core/schema-validators.ts takes it.
const Ajv = createRequire(import.meta.url)('ajv').default as new (o: Options) => AjvClass;
const SPEC = new URL('../../../shared/compose-spec/compose-spec.json', import.meta.url);
const reference = readFileSync(new URL('../../desired-state/compose.yaml', import.meta.url), 'utf8');

function specErrors(yaml: string): string[] {
  if (!existsSync(SPEC)) throw new Error(`the Compose Specification schema is missing: ${SPEC.pathname} (CI has it)`);
  const ajv = new Ajv({ strict: false, allErrors: true });
  // Its $schema names draft-07 without the trailing '#' ajv registers it under: compiled as draft-07 anyway.
  const { $schema: _draft, ...schema } = JSON.parse(readFileSync(SPEC, 'utf8')) as Record<string, unknown>;
  const validate = ajv.compile(schema);
  return validate(parse(yaml, { merge: true })) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath} ${e.message ?? ''}`);
}

describe('valid by the Compose Specification', () => {
  it('the reference stack', () => {
    expect(specErrors(reference)).toEqual([]);
  });

  it("the demo's desired state", () => {
    const pinned = (v: string) => ({ pinned: `127.0.0.1:5000/fixture/web:${v}@sha256:${'b'.repeat(64)}` });
    const images = { '1.0.0': pinned('1.0.0'), '1.1.0': pinned('1.1.0'), '1.2.0': pinned('1.2.0'), '1.3.0': pinned('1.3.0') } as unknown as FixtureImages;
    expect(specErrors(stackYaml(images, { api: 8081, web: 8082 }, '1.0.0', '1.1.0'))).toEqual([]);
  });

  it('a revert commit of the reference stack', () => {
    const bad = reference.replace(/nginx:1\.27\.3@sha256:[0-9a-f]{64}/, `nginx:1.27.4@sha256:${'c'.repeat(64)}`);
    const reverted = restoreServiceBlock(bad, reference, 'nginx');
    expect(reverted).toContain('nginx:1.27.3@');
    expect(specErrors(reverted)).toEqual([]);
  });

  it('catches what is not Compose (the check can fail)', () => {
    expect(specErrors('services:\n  web:\n    image: x\n    restart: sometimes\n    netwrk_mode: host\n').length).toBeGreaterThan(0);
  });
});
