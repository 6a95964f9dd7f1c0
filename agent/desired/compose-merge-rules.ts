import {
  DEPENDS_ON_DEFAULT,
  asList,
  blkioKey,
  buildMap,
  clone,
  deviceTargetKey,
  envFileKey,
  grantKey,
  hostsMap,
  isMapping,
  keyValueMap,
  mountTargetKey,
  namedMap,
  portKey,
  subnetKey,
  tmpfsKey,
  valueKey,
  type Raw,
} from './compose-merge-keys.js';

/**
 * Compose's rules for merging two YAML trees (compose-spec 13-merge.md, compose-go `override`):
 * a mapping is merged key by key, a sequence appended, a scalar replaced; the exceptions are
 * listed in RULES by their path from the top of a Compose file (`*` is any one key). Paths are
 * what the rules are about, so that a service merged on its own (extends) follows the same
 * table as one merged as part of a file.
 */

export type MergePath = (string | number)[];

/** Two values that cannot be merged: a mapping or a list overridden by another shape. */
export interface MergeConflict {
  path: MergePath;
  message: string;
}

/** Where conflicts go, and how the two sides are named in their messages (the earlier one by the path of the value). */
export interface MergeContext {
  conflicts: MergeConflict[];
  baseLabel: (path: readonly string[]) => string;
  overLabel: string;
}

type Rule = (base: unknown, over: unknown, path: string[], ctx: MergeContext) => unknown;

interface RuleEntry {
  pattern: string[];
  rule: Rule;
  /** The mapping form of the value, for rules that merge a list as a mapping (for `!reset` of one key). */
  asMapping?: (v: unknown) => Raw;
}

/** The later value wins, even null: command, entrypoint and healthcheck.test are replaced, never appended. */
const replace: Rule = (_base, over) => clone(over);

/** `KEY=VAL` lists and mappings merged by key; the later value of a key wins, null included (compose-go: `KEY` replaces `KEY=VAL`). */
const byKey: Rule = (base, over) => ({ ...keyValueMap(base), ...keyValueMap(over) });

/**
 * extra_hosts merged by host name, the later file's addresses replacing the earlier ones for
 * that host. compose-go keeps every distinct `host=ip` of both files instead (so an override
 * cannot change an address: the first line of /etc/hosts wins); the spec's extends section
 * lists extra_hosts among the mappings, which is what this follows.
 */
const hosts: Rule = (base, over) => ({ ...hostsMap(base), ...hostsMap(over) });

/** `build: dir` and `build: {...}` merged as mappings (compose-go: the string is the context). */
const build: Rule = (base, over, path, ctx) => mergeMappings(buildMap(base), buildMap(over), path, ctx);

/**
 * A list of names or a mapping of name to options (networks, models, depends_on), merged by
 * name. A name listed without options does not erase the options of the earlier file (null
 * keeps the earlier value); for depends_on a listed name means `condition: service_started,
 * required: true`, and that does replace an earlier condition, as in compose-go.
 */
function byName(fill: () => unknown): Rule {
  return (base, over, path, ctx) => mergeMappings(namedMap(base, fill), namedMap(over, fill), path, ctx);
}

/**
 * A sequence of unique entries: appended, then an entry whose key is already there replaces
 * it in place (compose-go EnforceUnicity; the spec: "merge entries that share a unique key").
 * `deep` merges the two entries instead of replacing (IPAM pools, as compose-go does).
 */
function unique(key: (v: unknown) => string, deep = false): Rule {
  return (base, over, path, ctx) => {
    const out: unknown[] = [];
    const at = new Map<string, number>();
    for (const entry of [...asList(base), ...asList(over)]) {
      const k = key(entry);
      const j = at.get(k);
      if (j === undefined) {
        at.set(k, out.length);
        out.push(entry);
      } else {
        out[j] = deep ? mergeValues(out[j], entry, [...path, String(j)], ctx) : entry;
      }
    }
    return out;
  };
}

/** Logging options are merged only for the same driver (or when one side names none); another driver replaces the whole block. */
const logging: Rule = (base, over, path, ctx) => {
  if (isMapping(base) && isMapping(over) && base.driver !== undefined && over.driver !== undefined && base.driver !== over.driver) return clone(over);
  return generic(base, over, path, ctx);
};

const listOfValues = unique(valueKey);

const RULES: RuleEntry[] = [
  ...['command', 'entrypoint', 'healthcheck.test'].map((k) => entry(`services.*.${k}`, replace)),
  // compose-go replaces a whole ulimit entry ({soft, hard} or a number), never soft alone.
  entry('services.*.ulimits.*', replace),
  ...['environment', 'labels', 'annotations', 'sysctls', 'build.args', 'build.labels', 'build.additional_contexts', 'deploy.labels'].map((k) => entry(`services.*.${k}`, byKey, keyValueMap)),
  ...['networks', 'volumes', 'secrets', 'configs'].map((k) => entry(`${k}.*.labels`, byKey, keyValueMap)),
  ...['extra_hosts', 'build.extra_hosts'].map((k) => entry(`services.*.${k}`, hosts, hostsMap)),
  entry('services.*.build', build, buildMap),
  entry('services.*.networks', byName(() => null), (v) => namedMap(v, () => null)),
  entry('services.*.models', byName(() => null), (v) => namedMap(v, () => null)),
  entry('services.*.depends_on', byName(DEPENDS_ON_DEFAULT), (v) => namedMap(v, DEPENDS_ON_DEFAULT)),
  entry('services.*.logging', logging),
  entry('services.*.ports', unique(portKey)),
  entry('services.*.volumes', unique(mountTargetKey)),
  entry('services.*.devices', unique(deviceTargetKey)),
  entry('services.*.tmpfs', unique(tmpfsKey)),
  entry('services.*.secrets', unique(grantKey('/run/secrets'))),
  entry('services.*.configs', unique(grantKey('/'))),
  entry('services.*.env_file', unique(envFileKey)),
  ...['device_read_bps', 'device_read_iops', 'device_write_bps', 'device_write_iops'].map((k) => entry(`services.*.blkio_config.${k}`, unique(blkioKey))),
  entry('networks.*.ipam.config', unique(subnetKey, true)),
  // Lists of plain values that the schema wants unique (uniqueItems), or compose-go dedupes:
  // appended without repeating a value. compose-go dedupes profiles too (not replaced).
  ...[
    'expose', 'dns', 'dns_opt', 'dns_search', 'label_file', 'cap_add', 'cap_drop', 'security_opt', 'profiles', 'links',
    'external_links', 'volumes_from', 'group_add', 'device_cgroup_rules', 'networks.*.aliases', 'networks.*.link_local_ips',
    'build.tags', 'build.platforms', 'build.cache_from', 'build.cache_to', 'deploy.placement.constraints',
  ].map((k) => entry(`services.*.${k}`, listOfValues)),
];

function entry(pattern: string, rule: Rule, asMapping?: (v: unknown) => Raw): RuleEntry {
  return { pattern: pattern.split('.'), rule, ...(asMapping ? { asMapping } : {}) };
}

function ruleAt(path: readonly string[]): RuleEntry | undefined {
  return RULES.find((r) => r.pattern.length === path.length && r.pattern.every((p, i) => p === '*' || p === path[i]));
}

/**
 * The value at `path` in the form its merge rule compares (`KEY=VAL` list -> mapping, names ->
 * mapping, `build: dir` -> mapping), or the value itself when it is a mapping; undefined when
 * it is not one. Used to reset one key of a value the earlier file wrote as a list.
 */
export function mappingFormAt(path: readonly string[], value: unknown): Raw | undefined {
  const r = ruleAt(path);
  if (r?.asMapping && value !== undefined && value !== null) return r.asMapping(value);
  return isMapping(value) ? value : undefined;
}

/**
 * Merges `over` onto `base` at `path` (from the top of a Compose file). Never mutates either
 * side and shares no node with them. A null or missing later value keeps the earlier one (as
 * compose-go does; `!reset` is how a file removes a value), except where the rule replaces.
 */
export function mergeValues(base: unknown, over: unknown, path: string[], ctx: MergeContext): unknown {
  const r = ruleAt(path);
  if (r?.rule === replace) return clone(over);
  if (over === undefined || over === null) return clone(base);
  if (base === undefined || base === null) return clone(over);
  return (r?.rule ?? generic)(base, over, path, ctx);
}

/** The general rule: mappings merged by key, sequences appended, anything else replaced. */
function generic(base: unknown, over: unknown, path: string[], ctx: MergeContext): unknown {
  if (isMapping(base) && isMapping(over)) return mergeMappings(base, over, path, ctx);
  if (Array.isArray(base) && Array.isArray(over)) return [...clone(base), ...clone(over)];
  // compose-go refuses ("cannot override <path>") only when the earlier value is a mapping or a
  // list; a scalar is simply replaced. The later value is kept so the merge can go on, and the
  // conflict reported so that the caller refuses the result.
  if (isMapping(base) || Array.isArray(base)) {
    ctx.conflicts.push({
      path: [...path],
      message: `${path.join('.')} is ${shape(base)} in ${ctx.baseLabel(path)} and ${shape(over)} in ${ctx.overLabel}: Compose cannot merge the two; write the same form in both, or mark the later one \`!override\` to replace it`,
    });
  }
  return clone(over);
}

/** Every key of both; keys of both merged by their rule. Keys keep the earlier file's order, new keys come after. */
export function mergeMappings(base: Raw, over: Raw, path: string[], ctx: MergeContext): Raw {
  const out = clone(base);
  for (const [k, v] of Object.entries(over)) {
    out[k] = k in base ? mergeValues(base[k], v, [...path, k], ctx) : clone(v);
  }
  return out;
}

function shape(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  return `the ${typeof v} ${JSON.stringify(v)}`;
}
