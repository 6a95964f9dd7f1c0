/** Named points where a test can stop the process dead (SIGKILL) to prove recovery. */
export type Failpoint = (name: string) => void;

/**
 * Failpoints for crash and race tests. `AGENT_FAILPOINTS=before:create-new,after:stop-old`
 * kills the process with SIGKILL when it reaches one of them; `name=sleep(3000)` pauses there
 * instead (synchronously: the whole process stops, as a slow disk or a stalled call would).
 * Each announces itself on stderr. Unset in production: then this is a no-op.
 */
export function failpointsFromEnv(env: NodeJS.ProcessEnv = process.env): Failpoint {
  const actions = new Map<string, string>();
  for (const item of (env.AGENT_FAILPOINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    actions.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? 'kill' : item.slice(eq + 1));
  }
  if (actions.size === 0) return () => undefined;
  return (name) => {
    const action = actions.get(name);
    if (!action) return;
    process.stderr.write(`failpoint ${name} reached: ${action}\n`);
    const sleep = /^sleep\((\d+)\)$/.exec(action);
    if (sleep) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(sleep[1]));
      return;
    }
    process.kill(process.pid, 'SIGKILL');
  };
}

export const noFailpoints: Failpoint = () => undefined;
