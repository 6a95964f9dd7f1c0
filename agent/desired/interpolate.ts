/**
 * Compose variable interpolation in string values: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, `$$` for a
 * literal `$`. Unlike Compose, an unset variable without a default is an error: deploying an
 * empty database password is never what the operator meant.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export interface InterpolationIssue {
  path: (string | number)[];
  message: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * `unset`, when given, makes unset variables (and failed `:?` checks) empty strings, as Compose
 * does, recording their names and where, instead of errors: `agent validate --allow-unset` in a
 * pull request's CI, where the host's secrets are not available.
 */
export function interpolateValue(value: unknown, env: Env, path: (string | number)[] = [], issues: InterpolationIssue[] = [], unset?: InterpolationIssue[]): { value: unknown; issues: InterpolationIssue[] } {
  const walk = (v: unknown, p: (string | number)[]): unknown => {
    if (typeof v === 'string') {
      const names: string[] = [];
      const r = interpolateString(v, env, unset ? names : undefined);
      if (r.error) issues.push({ path: p, message: r.error });
      for (const n of names) unset?.push({ path: p, message: `variable ${n} is not set: taken as empty (--allow-unset)` });
      return r.value;
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...p, i]));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...p, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, path), issues };
}

export function interpolateString(text: string, env: Env, unset?: string[]): { value: string; error?: string } {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = matchingBrace(text, i + 1);
      if (end < 0) return { value: text, error: `unterminated "\${" in "${preview(text)}"` };
      const r = expand(text.slice(i + 2, end), env, unset);
      if (r.error) return { value: text, error: r.error };
      out += r.value;
      i = end + 1;
      continue;
    }
    const m = NAME.exec(text.slice(i + 1));
    if (m) {
      const v = env[m[0]];
      if (v === undefined && !unset) return { value: text, error: unsetMessage(m[0]) };
      if (v === undefined) unset?.push(m[0]);
      out += v ?? '';
      i += 1 + m[0].length;
      continue;
    }
    out += '$';
    i++;
  }
  return { value: out };
}

function expand(inner: string, env: Env, unset?: string[]): { value: string; error?: string } {
  const m = NAME.exec(inner);
  if (!m) return { value: '', error: `invalid variable reference "\${${inner}}"` };
  const name = m[0];
  const rest = inner.slice(name.length);
  const v = env[name];
  if (rest === '' && v === undefined && unset) {
    unset.push(name);
    return { value: '' };
  }
  if (rest === '') return v === undefined ? { value: '', error: unsetMessage(name) } : { value: v };
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) return { value: '', error: `invalid variable reference "\${${inner}}"` };
  const arg = rest.slice(op.length);
  const colon = op.startsWith(':');
  const missing = colon ? v === undefined || v === '' : v === undefined;
  switch (op.slice(-1)) {
    case '-':
      return missing ? interpolateString(arg, env, unset) : { value: v as string };
    case '+':
      return missing ? { value: '' } : interpolateString(arg, env, unset);
    default:
      if (missing && unset) {
        unset.push(name);
        return { value: '' };
      }
      return missing ? { value: '', error: `variable ${name} is required: ${arg || 'not set'}` } : { value: v as string };
  }
}

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function unsetMessage(name: string): string {
  return `variable ${name} is not set; set it in the env file (envFile), allow it from the agent's environment (interpolation.allowEnv), or give a default with \${${name}:-...}`;
}

function preview(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** Names of the variables a value refers to (`$$` escapes excluded): their values are treated as secrets. */
export function referencedVariables(value: unknown, into: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string') {
    for (const m of value.replace(/\$\$/g, '').matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) into.add(m[1] as string);
  } else if (Array.isArray(value)) {
    for (const v of value) referencedVariables(v, into);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) referencedVariables(v, into);
  }
  return into;
}
