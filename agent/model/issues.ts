/** Where something was written: shown in every error a person reads. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** One thing wrong with the desired state, located for a person: file, line, column, JSON pointer. */
export interface ValidationIssue extends SourceLocation {
  pointer: string;
  message: string;
  /** Warnings are reported but do not block an apply. */
  severity?: 'error' | 'warning';
  /** Refused by the operator's policy: the setting that refuses it (`binds`, `networkModes`...). */
  policy?: string;
}

export function formatIssue(issue: ValidationIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.column}${issue.severity === 'warning' ? ' (warning)' : ''}`;
  return issue.pointer ? `${where}: ${issue.pointer}: ${issue.message}` : `${where}: ${issue.message}`;
}

