import { isMap, isScalar, parseDocument, type Document } from 'yaml';
import { AgentError } from '../core/errors.js';

/** The YAML of one service as plain data, for comparing a service across commits. */
export function serviceBlock(content: string, service: string): unknown {
  try {
    const doc = parseDocument(content, { uniqueKeys: false });
    const node = doc.getIn(['services', service], true);
    return node === undefined ? undefined : JSON.parse(JSON.stringify(doc.getIn(['services', service]) ?? null));
  } catch {
    return undefined;
  }
}

export function hasService(content: string, service: string): boolean {
  return serviceBlock(content, service) !== undefined;
}

/**
 * The tip's file with one service's block replaced by its block from a good commit, through
 * yaml's Document API: the rest of the file keeps its comments and layout, and the restored
 * block keeps its own comments from the good commit.
 */
export function restoreServiceBlock(tipContent: string, goodContent: string, service: string): string {
  const tip = parseDocument(tipContent, { keepSourceTokens: true });
  const good = parseDocument(goodContent);
  const goodNode = good.getIn(['services', service], true);
  if (goodNode === undefined) throw new AgentError('REVERT_FAILED', `service ${service} is not in the good version of the file`, { data: { service } });
  const services = tip.get('services', true);
  if (!isMap(services)) throw new AgentError('REVERT_FAILED', 'the file has no services map', { data: { service } });
  const pair = services.items.find((p) => isScalar(p.key) && String(p.key.value) === service);
  const cloned = (goodNode as { clone?: () => unknown }).clone?.() ?? goodNode;
  if (pair) pair.value = cloned as typeof pair.value;
  else tip.setIn(['services', service], cloned);
  return stringify(tip);
}

function stringify(doc: Document): string {
  return doc.toString({ lineWidth: 0 });
}
