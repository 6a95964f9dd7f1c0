import { parseImageRef } from '../core/image-ref.js';

/** The mark that tells the agent's own quarantine rules from the ones people write. */
export const QUARANTINE_MARK = 'gitops-agent quarantine:';

export interface QuarantineRule {
  /** Image name as written in the desired state, without tag or digest. */
  image: string;
  version: string;
  description: string;
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
  return {
    description: `${QUARANTINE_MARK} ${why}`,
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
  for (const r of config.packageRules ?? []) {
    const description = Array.isArray(r.description) ? r.description.join(' ') : (r.description ?? '');
    if (!description.startsWith(QUARANTINE_MARK)) continue;
    const m = /^!\/\^(.*)\$\/$/.exec(r.allowedVersions ?? '');
    if (!m) continue;
    const version = (m[1] as string).replace(/\\(.)/g, '$1');
    for (const image of [...(r.matchDepNames ?? []), ...(r.matchPackageNames ?? [])]) rules.push({ image, version, description: description.slice(QUARANTINE_MARK.length).trim() });
  }
  return rules;
}

/** The quarantine rule that forbids this image reference, if any. */
export function findQuarantine(rules: readonly QuarantineRule[], ref: string): QuarantineRule | undefined {
  const name = imageName(ref);
  const tag = imageTag(ref);
  return rules.find((r) => r.image === name && r.version === tag);
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
