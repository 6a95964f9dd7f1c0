// Container HEALTHCHECK of the agent image: GET /healthz on the agent's HTTP listener.
// Healthy (exit 0) on a 2xx answer, unhealthy (exit 1) otherwise; one line of output, which
// `docker inspect` shows under State.Health.
//   AGENT_HEALTHCHECK_URL  the URL to ask (set it when the listener is configured in the file)
//   AGENT_HTTP_LISTEN      otherwise: http://<this>/healthz (default 127.0.0.1:9180);
//                          '' (no listener) leaves nothing to check: reported healthy.
/* global process, console, fetch, AbortSignal */

/** The URL to check, or undefined when the agent has no listener. */
function healthUrl() {
  if (process.env.AGENT_HEALTHCHECK_URL) return process.env.AGENT_HEALTHCHECK_URL;
  const listen = process.env.AGENT_HTTP_LISTEN ?? '127.0.0.1:9180';
  if (listen === '') return undefined;
  const i = listen.lastIndexOf(':');
  let host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.slice(i + 1)}/healthz`;
}

const url = healthUrl();
if (url === undefined) {
  console.log('no HTTP listener (AGENT_HTTP_LISTEN is empty): nothing to check');
} else {
  process.exitCode = 1;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(4000), headers: { connection: 'close' } });
    const body = (await res.text()).slice(0, 300).trim();
    console.log(`${url}: ${res.status} ${body}`);
    if (res.ok) process.exitCode = 0;
  } catch (err) {
    const why = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
    console.log(`${url}: ${why}`);
  }
}
