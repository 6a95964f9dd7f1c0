import type { Revision } from '../core/ids.js';
import type { SourceFile } from '../desired/parse.js';

export interface SourceSnapshot {
  revision: Revision;
  files: SourceFile[];
  /** Details for `agent status` (commit subject, author...); never credentials. */
  meta?: Record<string, string>;
}

/** Where the desired state comes from: a local directory now, a Git repository later. */
export interface DesiredSource {
  readonly kind: 'dir' | 'git';
  /** For people: a path or a URL with credentials redacted. */
  readonly location: string;
  read(signal?: AbortSignal): Promise<SourceSnapshot>;
  /** Calls back when the source may have changed; returns a function that stops watching. */
  watch?(onChange: () => void): Promise<() => Promise<void>>;
}
