// @ts-check
/**
 * ESLint rule `layers/layers`: the folders of agent/ form a strict stack. A module may import
 * from its own folder and from folders of lower layers, never from a higher layer or from a
 * sibling of the same layer. The table of layers is passed as the rule's option (eslint.config.js),
 * so that the architecture is written down in one place and checked on every lint.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** @type {import('eslint').Rule.RuleModule} */
const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'agent/ folders import only from lower layers' },
    schema: [{ type: 'object', properties: { root: { type: 'string' }, layers: { type: 'array', items: { type: 'array', items: { type: 'string' } } } }, required: ['root', 'layers'], additionalProperties: false }],
    messages: {
      upward: "{{from}}/ (layer {{fromRank}}) must not import {{to}}/ (layer {{toRank}}): a layer imports only from the layers below it. Move the shared part down (types to model/, interfaces to ports/) or pass it in.",
      sibling: '{{from}}/ and {{to}}/ are siblings of layer {{rank}} and must not import each other: move the shared part down or pass it in.',
      unknown: 'agent/{{folder}}/ is not in the layer table of eslint.config.js: add it to the layer it belongs to.',
    },
  },
  create(context) {
    const { root, layers } = /** @type {{ root: string; layers: string[][] }} */ (context.options[0]);
    const rootAbs = resolve(context.cwd, root);
    /** @type {Map<string, number>} */
    const rank = new Map();
    layers.forEach((names, i) => names.forEach((n) => rank.set(n, i)));
    const folderOf = (/** @type {string} */ abs) => {
      const rel = relative(rootAbs, abs);
      if (rel.startsWith('..') || rel === '') return undefined;
      const parts = rel.split(sep);
      return parts.length > 1 ? parts[0] : '';
    };
    const file = context.physicalFilename;
    const from = folderOf(file);
    if (from === undefined) return {};
    const check = (/** @type {import('estree').Node} */ node, /** @type {unknown} */ spec) => {
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const to = folderOf(resolve(dirname(file), spec));
      if (to === undefined || to === from) return;
      const fr = rank.get(from);
      const tr = rank.get(to);
      if (fr === undefined) return context.report({ node, messageId: 'unknown', data: { folder: from } });
      if (tr === undefined) return context.report({ node, messageId: 'unknown', data: { folder: to } });
      if (tr > fr) context.report({ node, messageId: 'upward', data: { from, to, fromRank: String(fr), toRank: String(tr) } });
      else if (tr === fr) context.report({ node, messageId: 'sibling', data: { from, to, rank: String(fr) } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

/** Every relative import of every module under `root` (type-only ones too): the module graph. */
function moduleGraph(/** @type {string} */ rootAbs) {
  /** @type {Map<string, Set<string>>} */
  const graph = new Map();
  const walk = (/** @type {string} */ dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) {
        const deps = new Set();
        const text = readFileSync(path, 'utf8');
        for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
          deps.add(resolve(dirname(path), m[1] ?? m[2] ?? '').replace(/\.js$/, '.ts'));
        }
        graph.set(path, deps);
      }
    }
  };
  walk(rootAbs);
  return graph;
}

/** Strongly connected components (Tarjan): modules of one component import each other in a loop. */
function componentsOf(/** @type {Map<string, Set<string>>} */ graph) {
  /** @type {Map<string, number>} */
  const component = new Map();
  /** @type {Map<string, number>} */
  const index = new Map();
  /** @type {Map<string, number>} */
  const low = new Map();
  /** @type {string[]} */
  const stack = [];
  const onStack = new Set();
  let counter = 0;
  let components = 0;
  const visit = (/** @type {string} */ v) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(/** @type {number} */ (low.get(v)), /** @type {number} */ (low.get(w))));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(/** @type {number} */ (low.get(v)), /** @type {number} */ (index.get(w))));
      }
    }
    if (low.get(v) === index.get(v)) {
      for (;;) {
        const w = /** @type {string} */ (stack.pop());
        onStack.delete(w);
        component.set(w, components);
        if (w === v) break;
      }
      components++;
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return component;
}

/** @type {Map<string, Map<string, number>>} */
const componentCache = new Map();

/**
 * ESLint rule `layers/no-cycle`: no import loop among the modules of agent/, type-only imports
 * included, so that each module has one place in the stack.
 */
/** @type {import('eslint').Rule.RuleModule} */
const noCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'no import loops in agent/, type-only imports included' },
    schema: [{ type: 'object', properties: { root: { type: 'string' } }, required: ['root'], additionalProperties: false }],
    messages: { cycle: '{{to}} imports this module back (directly or through others): break the loop, e.g. move the shared types down to model/.' },
  },
  create(context) {
    const rootAbs = resolve(context.cwd, /** @type {{ root: string }} */ (context.options[0]).root);
    const file = context.physicalFilename;
    if (relative(rootAbs, file).startsWith('..')) return {};
    let component = componentCache.get(rootAbs);
    if (!component) {
      component = componentsOf(moduleGraph(rootAbs));
      componentCache.set(rootAbs, component);
    }
    const mine = component.get(file);
    const check = (/** @type {import('estree').Node} */ node, /** @type {unknown} */ spec) => {
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (target !== file && mine !== undefined && component.get(target) === mine) context.report({ node, messageId: 'cycle', data: { to: relative(rootAbs, target) } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

export default { rules: { layers: rule, 'no-cycle': noCycle } };
