/** What failed, and what to go back to: recorded before the revert is tried, so it survives a crash. */
export interface RevertRequest {
  service: string;
  failedHash: string;
  failedImage: string;
  /** Commit at which the failed spec was the desired state. */
  failedRevision: string;
  goodImage: string;
  /** Commit at which the good spec was applied. */
  goodRevision: string;
  /** Why it failed, already free of secrets. */
  reason: string;
  logs?: string;
  at: string;
}

export type RevertResult =
  | { status: 'pushed'; sha: string; reverts: string; quarantined?: string }
  | { status: 'not-needed'; reason: string }
  | { status: 'refused'; reason: string }
  | { status: 'failed'; reason: string };

/** What one revert attempt came to, for the report and the notifications. */
export interface RevertOutcome {
  service: string;
  status: 'pushed' | 'refused' | 'failed';
  commit?: string;
  reverts?: string;
  quarantined?: string;
  reason?: string;
  request: RevertRequest;
}

