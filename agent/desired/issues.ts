import type { SourceLocation } from './types.js';

/** One thing wrong with the desired state, located for a person: file, line, column, JSON pointer. */
export interface ValidationIssue extends SourceLocation {
  pointer: string;
  message: string;
  /** Warnings are reported but do not block an apply. */
  severity?: 'error' | 'warning';
}

export function formatIssue(issue: ValidationIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.column}${issue.severity === 'warning' ? ' (warning)' : ''}`;
  return issue.pointer ? `${where}: ${issue.pointer}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** JSON pointer (RFC 6901) for a path of keys and indexes. */
export function toPointer(path: readonly (string | number)[]): string {
  return path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

export function fromPointer(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}
