import { reply, type Route } from './server.js';

export interface Liveness {
  /** When the last reconcile pass finished, or undefined before the first. */
  lastPassAt?: number;
  /** A pass is running now (a long health gate is not a hang). */
  running: boolean;
  startedAt: number;
  ready: boolean;
}

/**
 * `/healthz`: the agent itself is alive when its loop keeps passing: a pass finished within
 * three intervals (or one is running). 503 otherwise, so that systemd's watchdog, Docker's
 * HEALTHCHECK or a monitor can restart or page. `ready` tells whether the stack is in sync.
 */
export function healthRoute(liveness: () => Liveness, intervalMs: number, now: () => number): Route {
  return {
    method: 'GET',
    path: '/healthz',
    handle(_req, _body, res) {
      const l = liveness();
      const since = l.lastPassAt ?? l.startedAt;
      const alive = l.running || now() - since < 3 * intervalMs + 60_000;
      reply(res, alive ? 200 : 503, { status: alive ? 'ok' : 'stuck', ready: l.ready, running: l.running, lastPassAt: l.lastPassAt ? new Date(l.lastPassAt).toISOString() : null });
    },
  };
}
