// Part of `npm run build`: writes the standalone JSON Schema validators next to the compiled
// agent (dist/schema-validators/), with the hash of the schema they were made from.
// See agent/core/schema-validators.ts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { URL } from 'node:url';
import { compiledValidatorPath, schemaHash, standaloneSource } from '../dist/agent/core/schema-validators.js';

for (const name of ['desired-state', 'agent-config']) {
  const schema = JSON.parse(readFileSync(new URL(`../schema/${name}.schema.json`, import.meta.url), 'utf8'));
  const file = compiledValidatorPath(name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, standaloneSource(name, schema));
  writeFileSync(`${file}.sha256`, `${schemaHash(name, schema)}\n`);
}
