import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashSpec, loadDesiredState } from '../../agent/desired/load.js';
import { recogniseLegacyHashes } from '../../agent/reconcile/assess.js';
import { LABELS } from '../../agent/core/labels.js';
import { StateStore } from '../../agent/state/store.js';
import type { Revision } from '../../agent/core/ids.js';
import type { ActualState, ContainerInfo } from '../../agent/model/actual.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const yaml = (pw: string) => `name: t\nservices:\n  db:\n    image: reg:5000/pg:15@${DIGEST}\n    environment: {POSTGRES_PASSWORD: "${pw}"}\n`;
const load = (pw: string, hashKey?: Buffer) => {
  const r = loadDesiredState({ files: [{ path: 'compose.yaml', content: yaml(pw) }], revision: 'dir:x' as Revision, env: {}, defaultStack: 't', ...(hashKey ? { hashKey } : {}) });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.state;
};

describe('the spec hash in container labels, keyed by a host secret', () => {
  it('cannot be checked against a guessed password without the key', () => {
    const key = Buffer.alloc(32, 7);
    const label = load('summer2026', key).services.db!.hash;
    expect(label).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    // An attacker who reads the label and guesses the password computes the plain hash: no match.
    const guess = load('summer2026').services.db!;
    expect(guess.hash).not.toBe(label);
    expect(hashSpec(guess.spec, Buffer.alloc(32, 8))).not.toBe(label);
    expect(hashSpec(guess.spec, key)).toBe(label);
  });

  it('recognises a container an earlier agent labelled with the plain hash: no recreation on upgrade', () => {
    const key = Buffer.alloc(32, 7);
    const desired = load('pw-1234', key);
    const old = { labels: { [LABELS.specHash]: load('pw-1234').services.db!.hash } } as unknown as ContainerInfo;
    const other = { labels: { [LABELS.specHash]: load('pw-5678').services.db!.hash } } as unknown as ContainerInfo;
    const actual = (c: ContainerInfo): ActualState => ({ stack: 't', services: { db: { name: 'db', current: c, others: [] } } });
    expect(recogniseLegacyHashes(actual(old), desired).services.db?.current?.labels[LABELS.specHash]).toBe(desired.services.db!.hash);
    expect(recogniseLegacyHashes(actual(other), desired).services.db?.current?.labels[LABELS.specHash]).toBe(other.labels[LABELS.specHash]);
  });

  it('a container held on its last applied spec (a failed or paused update pending) is recognised by that spec', () => {
    const key = Buffer.alloc(32, 7);
    const desired = load('pw-new-1', key);
    const appliedSpec = load('pw-old-1').services.db!.spec;
    const old = { labels: { [LABELS.specHash]: hashSpec(appliedSpec) } } as unknown as ContainerInfo;
    const applied = { db: { hash: hashSpec(appliedSpec), spec: appliedSpec, agent: desired.services.db!.agent, dependsOn: [], revision: 'r', at: '' } };
    const seen = recogniseLegacyHashes({ stack: 't', services: { db: { name: 'db', current: old, others: [] } } }, desired, applied, key);
    expect(seen.services.db?.current?.labels[LABELS.specHash]).toBe(hashSpec(appliedSpec, key));
  });

  it('the key is made once, 0600, by a command that changes things, and only read otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-'));
    const store = new StateStore(dir);
    expect(await store.specHashKey(false)).toBeUndefined();
    const key = await store.specHashKey(true);
    expect(key).toHaveLength(32);
    expect(statSync(join(dir, 'spec-hash.key')).mode & 0o777).toBe(0o600);
    expect(await store.specHashKey(true)).toEqual(key);
    writeFileSync(join(dir, 'spec-hash.key'), 'short\n');
    await expect(store.specHashKey(true)).rejects.toThrow(/is not 64 hex digits: restore it/);
  });
});
