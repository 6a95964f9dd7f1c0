/** One `KEY=VALUE` line; `literal`: single-quoted, taken as written (no `${VAR}`), as Compose takes it. */
export interface EnvEntry {
  key: string;
  value: string;
  literal: boolean;
}

/**
 * A `KEY=VALUE` file, as Compose reads `.env` and `env_file`: blank lines and `#` comments
 * skipped, an optional `export `, values optionally in single or double quotes.
 */
export function parseEnvEntries(text: string): EnvEntry[] {
  const out: EnvEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2] as string;
    const single = value.length >= 2 && value.startsWith("'") && value.endsWith("'");
    if (single || (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))) value = value.slice(1, -1);
    out.push({ key: m[1] as string, value, literal: single });
  }
  return out;
}

export function parseEnvFile(text: string): Record<string, string> {
  return Object.fromEntries(parseEnvEntries(text).map((e) => [e.key, e.value]));
}
