import type { Failpoint } from './types.js';

/**
 * Failpoints for crash tests: `AGENT_FAILPOINTS=before:create-new,after:stop-old` kills the
 * process with SIGKILL when it reaches one of them (the first time it does). Unset in
 * production: then this is a no-op.
 */
export function failpointsFromEnv(env: NodeJS.ProcessEnv = process.env): Failpoint {
  const wanted = new Set((env.AGENT_FAILPOINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  if (wanted.size === 0) return () => undefined;
  return (name) => {
    if (!wanted.has(name)) return;
    process.stderr.write(`failpoint ${name} reached: killing the agent\n`);
    process.kill(process.pid, 'SIGKILL');
  };
}

export const noFailpoints: Failpoint = () => undefined;
