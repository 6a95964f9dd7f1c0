import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';
import { mappingFormAt, type MergePath } from './compose-merge-rules.js';
import type { Raw } from './compose-merge-keys.js';

/**
 * Compose's `!reset` and `!override` YAML tags (13-merge.md "Reset value", "Replace value").
 *
 * The `yaml` package needs no option for them: a tag it does not know stays on its node
 * (`node.tag`, with a TAG_RESOLVE_FAILED warning) and `toJS()` gives the plain value, so
 * `FOO: !reset null` reads as the *string* "null" and `ports: !override [...]` as a list that
 * would be appended. The tags are therefore taken from the parsed Document by path, the way
 * compose-go's ResetProcessor records them, and applied by path:
 * - `!reset`: the value is removed from its own file and the key removed from what the earlier
 *   files (or the extended service) had;
 * - `!override`: the key is removed from what came before, then the file's value is taken as is.
 * A loader that does not call mergeTagsOf() silently gets those plain values: it must call it
 * for every file, and report its `refused`.
 */

export interface MergeTag {
  /** Path of the tagged value from the top of its file, e.g. ['services', 'app', 'ports']. */
  path: MergePath;
  tag: 'reset' | 'override';
}

export interface TagRefusal {
  path: MergePath;
  message: string;
}

const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

/** Cap on nodes walked, aliases expanded: a document that references itself exponentially is refused, not walked. */
const MAX_VISITS = 100_000;

/** The `!reset` / `!override` tags of one parsed document, and the tags refused (with why). */
export function mergeTagsOf(doc: Document): { tags: MergeTag[]; refused: TagRefusal[] } {
  const out = { tags: [] as MergeTag[], refused: [] as TagRefusal[], visits: 0 };
  walk(doc, doc.contents as Node | null, [], false, out);
  return { tags: out.tags, refused: out.refused };
}

interface WalkState {
  tags: MergeTag[];
  refused: TagRefusal[];
  visits: number;
}

function walk(doc: Document, node: Node | null | undefined, path: MergePath, inList: boolean, out: WalkState): void {
  if (!node) return;
  if (++out.visits > MAX_VISITS) {
    if (out.visits === MAX_VISITS + 1) out.refused.push({ path, message: `the document has more than ${MAX_VISITS} nodes once aliases are expanded; refusing to read its tags` });
    return;
  }
  // An alias to a tagged node carries the tag, as in compose-go (`x: *anchor` of `&anchor !override {...}`).
  const target = isAlias(node) ? node.resolve(doc) : node;
  if (!target) return;
  const tag = target.tag;
  if (tag === '!reset' || tag === '!override') {
    const name = tag.slice(1) as MergeTag['tag'];
    if (path.length === 0) out.refused.push({ path, message: `not supported: ${tag} on the whole document; tag the keys to ${name}` });
    // compose-go records these too but cannot remove one entry from the earlier file's list.
    else if (inList) out.refused.push({ path, message: `not supported: ${tag} on a list item: Compose cannot ${name} one entry of a list; tag the whole list (\`key: !override [...]\`) with the entries to keep` });
    else out.tags.push({ path, tag: name });
    if (name === 'reset') return;
  } else if (tag !== undefined && !CORE_TAGS.has(tag)) {
    out.refused.push({ path, message: `unknown YAML tag ${tag}: its value would be read as plain text; Compose knows only !reset and !override` });
  }
  if (isMap(target)) {
    for (const pair of target.items) {
      if (!isPair(pair)) continue;
      const key = pair.key as Node | null;
      const name = isScalar(key) ? String(key.value) : String(key);
      if (key && 'tag' in key && (key.tag === '!reset' || key.tag === '!override')) {
        out.refused.push({ path: [...path, name], message: `${key.tag} tags a key here: put it on the value (\`${name}: ${key.tag} ...\`)` });
      }
      walk(doc, pair.value as Node | null, [...path, name], false, out);
    }
  } else if (isSeq(target)) {
    target.items.forEach((item, i) => walk(doc, item as Node | null, [...path, i], true, out));
  }
}

/** The tags under a prefix, with paths relative to it (e.g. a service's tags from its file's). */
export function tagsUnder(tags: readonly MergeTag[], prefix: MergePath): MergeTag[] {
  return tags
    .filter((t) => t.path.length > prefix.length && prefix.every((p, i) => String(t.path[i]) === String(p)))
    .map((t) => ({ ...t, path: t.path.slice(prefix.length) }));
}

/**
 * The file's own value without its `!reset` values (their value "will be ignored", the spec
 * says). `root` is where `value` is in its file (e.g. ['services', 'app'] for a service), so
 * that tag paths, which are from the top of the file, find it.
 */
export function withoutResets(value: Raw, tags: readonly MergeTag[], root: MergePath = []): Raw {
  return removeAt(value, tagsUnder(tags, root).filter((t) => t.tag === 'reset').map((t) => t.path), root);
}

/**
 * What came before a file, with every key it tags `!reset` or `!override` removed. A key inside
 * a value the earlier file wrote as a list (`environment: [FOO=1]`, `networks: [front]`) is
 * removed from that value's mapping form, which the merge compares anyway.
 */
export function withoutTagged(value: Raw, tags: readonly MergeTag[], root: MergePath = []): Raw {
  return removeAt(value, tagsUnder(tags, root).map((t) => t.path), root);
}

function removeAt(value: Raw, paths: MergePath[], root: MergePath): Raw {
  let out = value;
  for (const p of paths) out = removeOne(out, p, root.map(String)) as Raw;
  return out;
}

/** A copy of `value` without the key at `path` (relative); `at` is the absolute path of `value`, for the rules. */
function removeOne(value: unknown, path: MergePath, at: string[]): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  const key = String(head);
  const here = mappingFormAt(at, value);
  if (here) {
    if (!(key in here)) return value;
    const copy = { ...here };
    if (rest.length === 0) delete copy[key];
    else copy[key] = removeOne(copy[key], rest, [...at, key]);
    return copy;
  }
  if (Array.isArray(value) && typeof head === 'number') {
    if (rest.length === 0) return value.filter((_, i) => i !== head);
    return value.map((e, i) => (i === head ? removeOne(e, rest, [...at, key]) : e));
  }
  return value;
}

