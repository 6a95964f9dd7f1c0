/**
 * The Compose files other projects publish (../shared/compose-corpus; CI has it), checked out
 * as a project would be: the file, plus small stand-ins for the files it names, and the
 * variables its README asks for.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CORPUS = new URL('../../../shared/compose-corpus/', import.meta.url).pathname;

/** The corpus' projects by name; fails loudly when the corpus is missing. */
export function corpusNames(): string[] {
  if (!existsSync(CORPUS)) throw new Error(`the Compose corpus is missing: ${CORPUS} (CI has it)`);
  return readdirSync(CORPUS).filter((n) => existsSync(join(CORPUS, n, 'compose.yaml'))).sort();
}

export function corpusFile(name: string): string {
  return readFileSync(join(CORPUS, name, 'compose.yaml'), 'utf8');
}

/** What the files need from the host: the variables their READMEs ask for. */
export const CORPUS_ENV: Record<string, string> = { TIMEZONE: 'Etc/UTC', PIHOLE_PW: 'pw-123456', PIHOLE_ROUTER_IP: '169.254.1.1', PIHOLE_NETWORK_DOMAIN: 'lan', PIHOLE_REVERSE_DNS: '169.254.1.1', PIHOLE_HOST_IP: '169.254.1.2', PIHOLE_HOST_IPV6: 'fe80::2', PLEX_MEDIA_PATH: '/srv/media', POSTGRES_USER: 'app', POSTGRES_PW: 'pw-123456', POSTGRES_DB: 'app', PGADMIN_MAIL: 'admin@example.org', PGADMIN_PW: 'pw-123456', VPN_SERVER_URL: 'vpn.example.org' };

/** The project in a new folder (`content` instead of the published file, when given), with a stand-in for each relative file it names. */
export function checkoutCorpus(name: string, content = corpusFile(name), into = mkdtempSync(join(tmpdir(), `corpus-${name}-`))): string {
  writeFileSync(join(into, 'compose.yaml'), content);
  for (const m of content.matchAll(/(?:^|[\s"'-])\.\/([\w./-]+)/gm)) {
    const path = join(into, m[1] as string);
    mkdirSync(join(path, '..'), { recursive: true });
    if (/\.\w+$/.test(m[1] as string)) writeFileSync(path, 'stand-in\n');
  }
  return into;
}
