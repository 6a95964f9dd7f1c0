/**
 * Tags that match their digests: each service image pinned as `name:tag@digest` is looked up
 * at its registry, and a tag that names another build is refused (`validate`, `plan`): the tag
 * is what people, Renovate and the quarantine read. `policy.allowDigestOnlyPins` makes it a
 * warning (the tag is then a label only). A registry that cannot be asked is a warning.
 */
import { parseImageRef, shortDigest } from '../core/image-ref.js';
import { lookupTag, type TagLookup } from '../docker/registry-tags.js';
import type { DesiredState } from '../model/desired.js';
import type { ValidationIssue } from '../model/issues.js';
import type { AgentConfig } from '../config/config.js';

export async function tagIssues(desired: DesiredState, config: Pick<AgentConfig, 'docker' | 'policy'>, lookup: (ref: string) => Promise<TagLookup> = (ref) => lookupTag(ref, { dockerConfigPath: config.docker.configPath })): Promise<ValidationIssue[]> {
  if (config.docker.checkTags === false) return [];
  const out: ValidationIssue[] = [];
  const seen = new Map<string, Promise<TagLookup>>();
  for (const s of Object.values(desired.services)) {
    const ref = parseImageRef(s.spec.image);
    if (!ref?.tag || !ref.digest) continue;
    const key = `${ref.name}:${ref.tag}`;
    if (!seen.has(key)) seen.set(key, lookup(s.spec.image));
    const found = await (seen.get(key) as Promise<TagLookup>);
    const where = s.imageLocation ?? s.location;
    const at = { file: where.file, line: where.line, column: where.column, pointer: `/services/${s.name}/image` };
    if (!found.ok) {
      out.push({ ...at, severity: 'warning', message: `cannot check that ${ref.name}:${ref.tag} is the pinned ${shortDigest(ref.digest)} at the registry: ${found.error}` });
    } else if (found.digest !== ref.digest && !found.platforms.includes(ref.digest)) {
      const message = `the tag ${ref.tag} of ${ref.name} is ${shortDigest(found.digest)} at the registry, not the pinned ${shortDigest(ref.digest)}: the pin is another build than its tag says (an older one, or a tag moved)`;
      out.push(config.policy.allowDigestOnlyPins ? { ...at, severity: 'warning', message: `${message} (allowed: policy.allowDigestOnlyPins)` } : { ...at, policy: 'allowDigestOnlyPins', message: `${message}; pin the digest the tag names, or allow digest-only pins in the policy` });
    }
  }
  return out;
}
