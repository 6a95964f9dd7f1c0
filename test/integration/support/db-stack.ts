/** The PostgreSQL stack the backup tests deploy through the agent's CLI. */
import { expect } from 'vitest';
import { EXIT } from '../../../agent/cli/exit-codes.js';
import { seedRows, tableChecksum, waitForPostgres } from '../../harness/postgres-fixture.js';
import type { PostgresImage } from '../../harness/postgres.js';
import type { AgentFixture } from './agent-cli.js';

export interface DbOptions {
  image?: string;
  restoreOnRollback?: boolean;
  database?: string;
  command?: string[];
  extraServices?: string;
  env?: Record<string, string>;
}

/** A PostgreSQL service on the host network, its data in a named volume, with an x-agent.backup block. */
export function dbStackYaml(f: AgentFixture, pg: PostgresImage, dbPort: number, o: DbOptions = {}): string {
  return [
    `name: ${f.stack}`,
    'x-agent:',
    '  backups: {retention: {keep: 3}}',
    'services:',
    '  db:',
    `    image: ${o.image ?? pg.pinned}`,
    '    network_mode: host',
    '    stop_grace_period: 20s',
    ...(o.command ? [`    entrypoint: ${JSON.stringify(o.command)}`] : []),
    '    environment:',
    `      PGPORT: "${dbPort}"`,
    ...Object.entries(o.env ?? {}).map(([k, v]) => `      ${k}: "${v}"`),
    '    volumes: ["pgdata:/var/lib/postgresql/data"]',
    '    x-agent:',
    '      backup:',
    `        postgres: {database: ${o.database ?? 'postgres'}, user: postgres}`,
    '        volumes: [pgdata]',
    `        restoreOnRollback: ${o.restoreOnRollback ?? true}`,
    '      health: {timeout: 60s, stabilization: 1s}',
    o.extraServices ?? '',
    'volumes:',
    '  pgdata: {}',
    '',
  ].join('\n');
}

/** Applies it, seeds `rows` rows in `items`, and returns their checksum. */
export async function deployDbStack(f: AgentFixture, pg: PostgresImage, dbPort: number, rows = 2000): Promise<string> {
  f.writeDesired(dbStackYaml(f, pg, dbPort));
  const r = await f.run('apply');
  expect(r.code, r.stdout + r.stderr).toBe(EXIT.ok);
  await waitForPostgres(dbPort);
  await seedRows(dbPort, 'items', rows);
  return tableChecksum(dbPort, 'items');
}

export async function listBackups(f: AgentFixture): Promise<{ id: string; service: string; reason: string; format?: string; artifacts: { file: string; bytes: number; added?: number; snapshot?: string }[] }[]> {
  const r = await f.run('backup list', ['--json']);
  expect(r.code, r.stderr).toBe(EXIT.ok);
  return JSON.parse(r.stdout);
}

