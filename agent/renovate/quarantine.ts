import { parseImageRef } from '../core/image-ref.js';

/** The mark that tells the agent's own quarantine rules from the ones people write. */
export const QUARANTINE_MARK = 'gitops-agent quarantine:';

export interface QuarantineRule {
  /** Image name as written in the desired state, without tag or digest. */
  image: string;
  version: string;
  /** The digest of the build that failed: refused under any tag and name it is pinned with. */
  digest?: string;
  description: string;
}

/** How the failed build's digest is kept in a rule's description (Renovate ignores it; the agent reads it back). */
const DIGEST_NOTE = /\s*\[digest (sha256:[0-9a-f]{64})\]/;

/** The digest a reference pins, if it pins one. */
export function imageDigest(ref: string): string | undefined {
  return /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1];
}

interface RenovatePackageRule {
  description?: string | string[];
  matchDatasources?: string[];
  matchDepNames?: string[];
  matchPackageNames?: string[];
  allowedVersions?: string;
  [key: string]: unknown;
}

interface RenovateConfig {
  packageRules?: RenovatePackageRule[];
  [key: string]: unknown;
}

/** Image name as written (registry and path, no tag or digest): what Renovate's docker-compose manager calls the dependency. */
export function imageName(ref: string): string {
  return ref.replace(/@.*$/, '').replace(/:([\w][\w.-]{0,127})$/, '');
}

export function imageTag(ref: string): string | undefined {
  return parseImageRef(ref)?.tag;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The rule that stops Renovate proposing exactly this version of this image. */
export function quarantineRule(image: string, version: string, why: string): RenovatePackageRule {
  const digest = imageDigest(image);
  return {
    description: `${QUARANTINE_MARK} ${why}${digest ? ` [digest ${digest}]` : ''}`,
    matchDatasources: ['docker'],
    matchDepNames: [imageName(image)],
    allowedVersions: `!/^${escapeRegex(version)}$/`,
  };
}

/** The agent's quarantine rules in a renovate.json; rules people wrote are ignored. */
export function parseQuarantineRules(renovateJson: string | undefined): QuarantineRule[] {
  if (!renovateJson) return [];
  let config: RenovateConfig;
  try {
    config = JSON.parse(renovateJson) as RenovateConfig;
  } catch {
    return [];
  }
  const rules: QuarantineRule[] = [];
  // read by shape: a rule of the wrong shape is not the agent's (validate reports it)
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  for (const r of Array.isArray(config?.packageRules) ? (config.packageRules as unknown[]) : []) {
    if (typeof r !== 'object' || r === null) continue;
    const rule = r as RenovatePackageRule;
    const description = Array.isArray(rule.description) ? strings(rule.description).join(' ') : typeof rule.description === 'string' ? rule.description : '';
    if (!description.startsWith(QUARANTINE_MARK)) continue;
    const m = /^!\/\^(.*)\$\/$/.exec(typeof rule.allowedVersions === 'string' ? rule.allowedVersions : '');
    if (!m) continue;
    const version = (m[1] as string).replace(/\\(.)/g, '$1');
    const digest = DIGEST_NOTE.exec(description)?.[1];
    const text = description.slice(QUARANTINE_MARK.length).replace(DIGEST_NOTE, '').trim();
    for (const image of [...strings(rule.matchDepNames), ...strings(rule.matchPackageNames)]) rules.push({ image, version, ...(digest ? { digest } : {}), description: text });
  }
  return rules;
}

/** The quarantine rule that forbids this image reference, if any. */
export function findQuarantine(rules: readonly QuarantineRule[], ref: string): QuarantineRule | undefined {
  return rules.find((r) => quarantines(r, ref));
}

/** The rule forbids the reference: the same image and version, or the failed build's digest under any tag or name. */
export function quarantines(rule: QuarantineRule, ref: string): boolean {
  if (rule.digest && imageDigest(ref) === rule.digest) return true;
  return rule.image === imageName(ref) && rule.version === imageTag(ref);
}

/** renovate.json with the rule added (once), formatted as Renovate's own files are: 2 spaces, final newline. */
export function addQuarantineRule(renovateJson: string | undefined, image: string, version: string, why: string): string {
  const config: RenovateConfig = renovateJson ? (JSON.parse(renovateJson) as RenovateConfig) : { $schema: 'https://docs.renovatebot.com/renovate-schema.json' };
  const existing = parseQuarantineRules(renovateJson);
  if (!existing.some((r) => r.image === imageName(image) && r.version === version)) {
    config.packageRules = [...(config.packageRules ?? []), quarantineRule(image, version, why)];
  }
  return `${JSON.stringify(config, null, 2)}\n`;
}
