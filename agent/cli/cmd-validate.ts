import { loadDesiredState } from '../desired/load.js';
import { createLocalDirSource } from '../source/local-dir.js';
import { loadInterpolationEnv } from '../config/config.js';
import { EXIT, ExitError } from './exit-codes.js';
import { formatIssues } from './format.js';
import type { Runtime } from './runtime.js';

/** `agent validate [dir]`: schema and semantic checks of the desired state; touches nothing. */
export async function validateCommand(rt: Runtime, opts: { dir?: string; json?: boolean }, out: (s: string) => void): Promise<void> {
  const source = opts.dir ? createLocalDirSource(opts.dir) : rt.source;
  const snapshot = await source.read();
  const result = loadDesiredState({ files: snapshot.files, revision: snapshot.revision, env: await loadInterpolationEnv(rt.config), defaultStack: rt.config.stack, rootLabel: source.location });
  const issues = result.ok ? result.warnings : result.issues;
  if (opts.json) {
    out(JSON.stringify({ valid: result.ok, revision: snapshot.revision, source: source.location, services: result.ok ? Object.keys(result.state.services) : [], issues }, null, 2));
  } else {
    if (issues.length > 0) out(formatIssues(issues));
    if (result.ok) out(`${source.location}: valid (revision ${snapshot.revision}, stack ${result.state.stack}, ${Object.keys(result.state.services).length} services${result.warnings.length ? `, ${result.warnings.length} warning(s)` : ''})`);
  }
  if (!result.ok) {
    const errors = issues.filter((i) => i.severity !== 'warning').length;
    throw new ExitError(EXIT.invalidDesiredState, `${source.location}: invalid desired state (${errors} error${errors === 1 ? '' : 's'})`);
  }
}
