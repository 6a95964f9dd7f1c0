/**
 * The secret values this process has seen (the env file's, those the desired state
 * interpolates): the logger redacts them from every line it writes, whatever field or message
 * they end up in. One set per process, as there is one logger.
 */
const known = new Set<string>();

/** Values shorter than 4 characters are not redacted: they would garble every line. */
export function addKnownSecrets(values: Iterable<string>): void {
  for (const v of values) if (v.length >= 4) known.add(v);
}

export function knownSecrets(): readonly string[] {
  return [...known];
}
