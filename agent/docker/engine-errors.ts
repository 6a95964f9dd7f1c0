import { AgentError, errorMessage } from '../core/errors.js';

/** The engine's errors as the agent's: unreachable (transient), refused, not found, with the engine's own message. */
export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode;
}

function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: string } } | null)?.json;
  return (json?.message ?? errorMessage(err)).replace(/^\(HTTP code \d+\) [a-z ]+ - /i, '').trim();
}

export function translate(err: unknown, what: string): AgentError {
  if (err instanceof AgentError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT') {
    return new AgentError('DOCKER_UNAVAILABLE', `Docker engine unreachable (${code}) during ${what}`, { cause: err });
  }
  if ((err as Error | null)?.name === 'AbortError') return new AgentError('ABORTED', `${what} aborted`, { cause: err });
  return new AgentError('DOCKER_ERROR', `${what} failed: ${engineMessage(err)}`, { cause: err, data: { status: statusOf(err) }, class: statusOf(err) !== undefined && (statusOf(err) as number) >= 500 ? 'transient' : 'terminal' });
}

export function pullError(err: unknown, ref: string): AgentError {
  const base = translate(err, `pull ${ref}`);
  if (base.code === 'DOCKER_UNAVAILABLE' || base.code === 'ABORTED') return base;
  const message = engineMessage(err);
  if (/manifest unknown|not found|does not exist|no such image|manifest for .* not found/i.test(message)) {
    return new AgentError('IMAGE_NOT_FOUND', `image ${ref} not found in its registry: ${message}`, { cause: err, data: { ref } });
  }
  if (/unauthorized|authentication required|denied|401/i.test(message)) {
    return new AgentError('PULL_AUTH_FAILED', `registry refused credentials for ${ref}: ${message}`, { cause: err, data: { ref } });
  }
  return new AgentError('PULL_FAILED', `pull of ${ref} failed: ${message}`, { cause: err, data: { ref } });
}
