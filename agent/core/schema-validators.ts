/**
 * JSON Schema validators, compiled ahead of time. Compiling the desired-state schema with ajv
 * takes 100-200 ms, paid by every `agent validate`, `plan`, `apply` and `status`; `npm run
 * build` writes standalone validators (ajv's own code generation) next to the compiled agent,
 * and this module loads them in a few milliseconds. Each carries a hash of its schema and
 * options: a validator that does not match them, or no file at all (running from source), falls
 * back to compiling at run time, so the result is the same either way.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv as AjvClass, Options, ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);

export type SchemaName = 'desired-state' | 'agent-config';

const BASE: Options = { allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true };
/** `verbose` for the desired state: its error messages use the failing schema's titles. */
export const AJV_OPTIONS: Record<SchemaName, Options> = { 'desired-state': { ...BASE, verbose: true }, 'agent-config': BASE };

/** Where `npm run build` puts the standalone validators: dist/schema-validators/. */
export function compiledValidatorPath(name: SchemaName): string {
  return fileURLToPath(new URL(`../../schema-validators/${name}.cjs`, import.meta.url));
}

export function schemaHash(name: SchemaName, schema: object): string {
  return createHash('sha256').update(JSON.stringify([schema, AJV_OPTIONS[name]])).digest('hex');
}

/** The validator: precompiled when the build wrote a matching one, compiled here otherwise. */
export function loadValidator(name: SchemaName, schema: object): ValidateFunction {
  const file = compiledValidatorPath(name);
  const hash = existsSync(`${file}.sha256`) ? readFileSync(`${file}.sha256`, 'utf8').trim() : undefined;
  if (hash === schemaHash(name, schema) && existsSync(file)) return require(file) as ValidateFunction;
  return newAjv(name).compile(schema);
}

/** The standalone module's source, for the build. */
export function standaloneSource(name: SchemaName, schema: object): string {
  const ajv = newAjv(name, true);
  const standalone = (require('ajv/dist/standalone') as { default: (a: unknown, v: ValidateFunction) => string }).default;
  return standalone(ajv, ajv.compile(schema));
}

function newAjv(name: SchemaName, source = false) {
  const { Ajv } = require('ajv') as { Ajv: typeof AjvClass };
  return new Ajv({ ...AJV_OPTIONS[name], ...(source ? { code: { source: true } } : {}) });
}
