import { readFile } from 'node:fs/promises';
import { AgentError } from '../../core/errors.js';

export interface GitCredentials {
  username: string;
  password: string;
}

/** Where credentials come from: never the configuration file itself, never a URL that gets printed. */
export interface GitAuthConfig {
  username?: string;
  /** A file holding the password or token (trailing newline ignored). */
  passwordFile?: string;
  /** An environment variable holding the password or token. */
  passwordEnv?: string;
}

/**
 * Resolves credentials: a token works as the password with any user name on Gitea, Forgejo and
 * GitHub (`x-access-token`). Credentials embedded in the URL are taken out of it, so that the
 * URL can be shown.
 */
export async function resolveGitCredentials(url: string, auth: GitAuthConfig | undefined, env: NodeJS.ProcessEnv = process.env): Promise<{ url: string; credentials?: GitCredentials }> {
  const parsed = new URL(url);
  let credentials: GitCredentials | undefined;
  if (parsed.username || parsed.password) {
    credentials = { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) };
    parsed.username = '';
    parsed.password = '';
  }
  let password: string | undefined;
  if (auth?.passwordFile) {
    try {
      password = (await readFile(auth.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new AgentError('CONFIG_INVALID', `cannot read the Git password file ${auth.passwordFile}: ${(err as Error).message}`, { cause: err });
    }
  } else if (auth?.passwordEnv) {
    password = env[auth.passwordEnv];
    if (password === undefined) throw new AgentError('CONFIG_INVALID', `environment variable ${auth.passwordEnv} (Git password) is not set`);
  }
  if (password !== undefined) credentials = { username: auth?.username ?? credentials?.username ?? 'gitops-agent', password };
  else if (auth?.username && credentials) credentials.username = auth.username;
  return credentials ? { url: parsed.toString(), credentials } : { url: parsed.toString() };
}

/** A URL fit for logs and status: any user info is replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
}

/**
 * Removes every occurrence of the given secrets (and URL user info) from a text meant for people:
 * as written, URL-encoded, and base64-encoded (at any alignment inside a longer base64 text, as
 * in an `Authorization: Basic` header).
 */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text.replace(/(https?:\/\/)[^/\s@]+@/g, '$1***@');
  const forms = [...new Set(secrets.filter((s) => s.length >= 4).flatMap(secretForms))].sort((a, b) => b.length - a.length);
  for (const f of forms) out = out.split(f).join('[redacted]');
  return out;
}

/** A JSON text (a log line) with the secrets redacted inside its strings only, so that numbers and literals stay JSON. */
export function redactJsonStrings(json: string, secrets: readonly string[]): string {
  return json.replace(/"(?:[^"\\]|\\.)*"/g, (s) => redactText(s, secrets));
}

/** A secret as written, URL-encoded, and the base64 characters it alone determines at each of the three alignments. */
export function secretForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  // as written, URL-encoded, and as a JSON string holds it (a log line)
  const out = [secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)];
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const form = b64.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6));
    if (form.length >= 6) out.push(form);
  }
  return out;
}
