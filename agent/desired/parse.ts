import type { SourceFile } from '../model/source.js';
import { LineCounter, isMap, isSeq, isScalar, isPair, parseDocument, visit, type Document, type Node } from 'yaml';
import { toPointer } from './issues.js';
import { type ValidationIssue } from '../model/issues.js';

export interface ParsedFile {
  path: string;
  doc: Document.Parsed;
  lines: LineCounter;
  value: unknown;
  /** A model composed of several files: the file that wrote the value at a path (issues and positions go there). */
  route?: (path: readonly (string | number)[]) => ParsedFile;
}

export interface ParseLimits {
  maxFileBytes: number;
  maxAliasCount: number;
  /** How deep maps and lists may nest (Compose files need about 6). */
  maxDepth: number;
  /** All the files of one desired state together (includes and extends counted). */
  maxTotalBytes: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxFileBytes: 1024 * 1024, maxAliasCount: 100, maxDepth: 64, maxTotalBytes: 8 * 1024 * 1024 };

/** Key names that would reach an object's prototype wherever a map becomes an object. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * What is refused before the YAML parser runs: a directive (`%YAML 1.1` reads `yes` as true,
 * `%TAG` renames types; the files are read as YAML 1.2, as Compose reads them), and flow
 * collections (`[`, `{`) nested deeper than `maxDepth`. Every bracket counts, in quotes and
 * comments too: an upper bound of what the parser would recurse into, which no quoting can
 * hide from it (a file needs more than `maxDepth` unclosed brackets in its text to be refused).
 */
export function preflight(text: string, maxDepth: number): { line: number; column: number; message: string } | undefined {
  let line = 1;
  let column = 0;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    column++;
    if (c === 10) {
      line++;
      column = 0;
    } else if (c === 37 /* % */ && column === 1) {
      const name = /^%(\S*)/.exec(text.slice(i, i + 40))?.[1] ?? '';
      return { line, column, message: `the YAML directive %${name} is refused: the file is read as YAML 1.2, as Compose reads it (remove the directive and its ---)` };
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > maxDepth) return { line, column, message: `lists and maps nest deeper than ${maxDepth} levels here (or the text holds that many unclosed [ and {); refusing the file` };
    } else if ((c === 93 /* ] */ || c === 125) /* } */ && depth > 0) {
      depth--;
    }
  }
  return undefined;
}

/** After parsing: nesting deeper than `maxDepth`, an alias inside the node it names (a cycle), a key that reaches the prototype. */
function shapeIssue(doc: Document.Parsed, maxDepth: number): { offset: number; message: string } | undefined {
  let found: { offset: number; message: string } | undefined;
  visit(doc, {
    Pair(_key, pair, path) {
      if (isScalar(pair.key) && PROTOTYPE_KEYS.has(String(pair.key.value))) {
        found = { offset: pair.key.range?.[0] ?? 0, message: `the key "${String(pair.key.value)}" is refused: it names a JavaScript object's prototype` };
        return visit.BREAK;
      }
      // maps and lists on the way here (a pair sits between a map and its value)
      if (path.filter((n) => isMap(n) || isSeq(n)).length > maxDepth) {
        found = { offset: pair.key && (pair.key as Node).range ? ((pair.key as Node).range as [number, number, number])[0] : 0, message: `maps and lists nest deeper than ${maxDepth} levels here; refusing the file` };
        return visit.BREAK;
      }
      return undefined;
    },
    Alias(_key, alias) {
      const target = alias.resolve(doc);
      const [from, to] = [target?.range?.[0], target?.range?.[1]];
      const at = alias.range?.[0] ?? 0;
      if (from !== undefined && to !== undefined && at >= from && at < to) {
        found = { offset: at, message: `the alias *${alias.source} is inside the node its anchor names: a cycle` };
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/**
 * Parses one YAML file keeping positions. Returns the issues instead of throwing so that every
 * problem of every file is reported at once.
 */
export function parseYamlFile(file: SourceFile, limits: ParseLimits = DEFAULT_PARSE_LIMITS): { parsed?: ParsedFile; issues: ValidationIssue[] } {
  const at = (line: number, column: number, message: string, pointer = ''): ValidationIssue => ({ file: file.path, line, column, pointer, message });
  const bytes = file.bytes ?? Buffer.byteLength(file.content);
  if (bytes > limits.maxFileBytes) {
    return { issues: [at(1, 1, `file is ${formatBytes(bytes)}; the limit is ${formatBytes(limits.maxFileBytes)}`)] };
  }
  // Before the parser: nesting it would recurse into (20 KiB of `[` exhaust its memory) and
  // directives that change how the values are read.
  const before = preflight(file.content, limits.maxDepth);
  if (before) return { issues: [at(before.line, before.column, before.message)] };
  const lines = new LineCounter();
  // merge: Compose files use YAML's merge key (`<<: *defaults`), a YAML 1.1 feature.
  const doc = parseDocument(file.content, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, strict: true, version: '1.2', merge: true });
  const issues: ValidationIssue[] = doc.errors.map((e) => {
    // An unclosed quote swallows the rest of the file: the parser notices at its end. Point at
    // the quote that opened the string instead, where the mistake is.
    const opened = e.code === 'MISSING_CHAR' && /closing "?quote/i.test(e.message) ? openingQuote(doc, e.pos[0]) : undefined;
    if (opened !== undefined) {
      const start = lines.linePos(opened);
      const end = e.linePos?.[0];
      return at(start.line, start.col, `missing closing quote: the quoted string that starts here runs on to ${end ? `line ${end.line}` : 'the end of the file'}`);
    }
    const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
    return at(pos.line, pos.col, firstLine(e.message));
  });
  if (issues.length > 0) return { issues };
  if (doc.contents === null) return { issues: [at(1, 1, 'file is empty; it must hold a `services:` map')] };
  const shape = shapeIssue(doc, limits.maxDepth);
  if (shape) {
    const pos = lines.linePos(shape.offset);
    return { issues: [at(pos.line, pos.col, shape.message)] };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: limits.maxAliasCount });
  } catch (err) {
    const alias = firstAliasOffset(doc);
    const pos = lines.linePos(alias ?? 0);
    const why = err instanceof Error && /alias/i.test(err.message) ? `aliases expand to too many nodes (limit ${limits.maxAliasCount}); refusing a possible alias bomb` : String(err);
    return { issues: [at(pos.line, pos.col, why)] };
  }
  return { parsed: { path: file.path, doc, lines, value }, issues: [] };
}

/** Position of the node at a path; for a missing member, the closest existing parent. `key` points at the key instead of the value. */
export function locate(routed: ParsedFile, path: readonly (string | number)[], key = false): { line: number; column: number } {
  const parsed = fileOf(routed, path);
  let node: unknown = parsed.doc.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      const keyNode = pair.key as Node;
      if (key && segment === path[path.length - 1]) {
        offset = keyNode.range?.[0] ?? offset;
        node = undefined;
        break;
      }
      node = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (item === undefined) break;
      node = item;
      offset = (item as Node | null)?.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  const pos = parsed.lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

export function issueAt(parsed: ParsedFile, path: readonly (string | number)[], message: string, key = false): ValidationIssue {
  const { line, column } = locate(parsed, path, key);
  return { file: fileOf(parsed, path).path, line, column, pointer: toPointer(path), message };
}

/** The file that wrote the value at `path`: the file itself, or for a composed model the one its route names. */
export function fileOf(parsed: ParsedFile, path: readonly (string | number)[]): ParsedFile {
  return parsed.route?.(path) ?? parsed;
}

/** Where the quoted scalar that reaches `errorOffset` (an unclosed one) begins. */
function openingQuote(doc: Document.Parsed, errorOffset: number): number | undefined {
  let start: number | undefined;
  visit(doc, {
    Scalar(_key, node) {
      const [from, to] = node.range ?? [0, 0];
      if ((node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') && to >= errorOffset && (start === undefined || from < start)) start = from;
    },
  });
  return start;
}

function firstAliasOffset(doc: Document.Parsed): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0];
      return visit.BREAK;
    },
  });
  return offset;
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? message;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
