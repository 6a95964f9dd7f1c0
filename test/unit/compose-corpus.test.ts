/**
 * The Compose files other projects publish (../shared/compose-corpus, CI has it): each one is
 * validated and planned as the agent would on a host, with stand-ins for the files it refers to
 * and values for its variables. Each is accepted, or refused with file:line and a reason a person
 * understands; none is accepted with a key dropped.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDesiredState, snapshotInput } from '../../agent/desired/load.js';
import { planChanges } from '../../agent/plan/plan.js';
import { createLocalDirSource } from '../../agent/source/local-dir.js';

const CORPUS = new URL('../../../shared/compose-corpus/', import.meta.url).pathname;
if (!existsSync(CORPUS)) throw new Error(`the Compose corpus is missing: ${CORPUS} (CI has it)`);
const names = readdirSync(CORPUS).filter((n) => existsSync(join(CORPUS, n, 'compose.yaml'))).sort();

/** What each file needs from the host: the variables its README asks for. */
const ENV: Record<string, string> = { TIMEZONE: 'Etc/UTC', PIHOLE_PW: 'pw-123456', PIHOLE_ROUTER_IP: '169.254.1.1', PIHOLE_NETWORK_DOMAIN: 'lan', PIHOLE_REVERSE_DNS: '169.254.1.1', PIHOLE_HOST_IP: '169.254.1.2', PIHOLE_HOST_IPV6: 'fe80::2', PLEX_MEDIA_PATH: '/srv/media', POSTGRES_USER: 'app', POSTGRES_PW: 'pw-123456', POSTGRES_DB: 'app', PGADMIN_MAIL: 'admin@example.org', PGADMIN_PW: 'pw-123456', VPN_SERVER_URL: 'vpn.example.org' };

/** Why a file is refused, when it is: each a decision documented in docs/desired-state.md. */
const REFUSED: Record<string, RegExp[]> = {
  'ac-minecraft': [/^not supported: "~\/minecraft_data": a path in the home directory/],
  'ac-nginx-golang-postgres': [/missing required key "image"/, /^not supported: the agent deploys pinned images/],
  'ac-traefik-golang': [/missing required key "image"/, /^not supported: the agent deploys pinned images/],
};

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The project as it would be checked out: the file, and small stand-ins for the files it names. */
function checkout(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `corpus-${name}-`));
  dirs.push(dir);
  const compose = readFileSync(join(CORPUS, name, 'compose.yaml'), 'utf8');
  writeFileSync(join(dir, 'compose.yaml'), compose);
  for (const m of compose.matchAll(/(?:^|[\s"'-])\.\/([\w./-]+)/gm)) {
    const path = join(dir, m[1] as string);
    mkdirSync(join(path, '..'), { recursive: true });
    if (/\.\w+$/.test(m[1] as string)) writeFileSync(path, 'stand-in\n');
  }
  return dir;
}

describe.each(names)('%s', (name) => {
  it(REFUSED[name] ? 'is refused, each error at its line with the reason' : 'is accepted and planned, every service on its networks', async () => {
    const dir = checkout(name);
    const snap = await createLocalDirSource(dir).read();
    const r = loadDesiredState(snapshotInput(snap, { env: ENV, defaultStack: name, roots: { files: '/srv/agent/project-files', data: '/srv/agent/project-data' } }));
    const expected = REFUSED[name];
    if (expected) {
      expect(r.ok).toBe(false);
      if (r.ok) return;
      for (const i of r.issues) expect(i.line, i.message).toBeGreaterThan(0);
      for (const re of expected) expect(r.issues.map((i) => i.message)).toContainEqual(expect.stringMatching(re));
      return;
    }
    if (!r.ok) throw new Error(r.issues.map((i) => `${i.file}:${i.line}: ${i.message}`).join('\n'));
    const plan = planChanges({ desired: r.state, actual: { stack: r.state.stack, services: {} }, applied: {}, held: {}, prune: false });
    expect(plan.steps.map((s) => [s.service, s.action])).toEqual(Object.keys(r.state.services).map((s) => [s, 'create']));
    // Every service that sets no network_mode is on a network of the project, by name.
    for (const s of Object.values(r.state.services)) {
      if (s.spec.networks) expect(s.spec.networks.every((a) => a.aliases.includes(s.name))).toBe(true);
      else expect(s.spec.networkMode).toMatch(/^(host|bridge|none|container:.+)$/);
    }
  });
});

it('the corpus is there, and most of it is accepted as published', () => {
  expect(names.length).toBeGreaterThanOrEqual(16);
  expect(names.filter((n) => !REFUSED[n]).length).toBeGreaterThanOrEqual(13);
});
