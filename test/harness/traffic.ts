/**
 * Steady client traffic for measuring an update's effect: a request every `everyMs` (each one
 * on its own, not waiting for the last), what every answer was, how many failed (an error or a
 * status other than 200), the longest stretch of sending times in which no request succeeded
 * (a slow success is no gap), and the slowest success.
 *
 * A request sent on a kept-alive connection that the server closed at the same moment (nginx's
 * old workers closing their idle connections on a reload) is sent again once, as browsers
 * and HTTP libraries do for an idempotent request that got no byte of an answer; such retries are counted apart. Any other error counts as failed.
 */
export interface TrafficReport {
  requests: number;
  failed: number;
  /** Requests sent again once because their kept-alive connection was closed under them (they then succeeded or count as failed). */
  retried: number;
  /** The longest time between the sending of two requests that succeeded (and from the start, and to the end), in ms. */
  longestGapMs: number;
  /** The longest a successful request took, in ms. */
  slowestMs: number;
  /** Successful answers by body (trimmed). */
  bodies: Record<string, number>;
  /** The first few failures, for a report. */
  failures: string[];
}

export function startTraffic(url: string, everyMs = 10, timeoutMs = 5000): { stop(): Promise<TrafficReport> } {
  const report: TrafficReport = { requests: 0, failed: 0, retried: 0, longestGapMs: 0, slowestMs: 0, bodies: {}, failures: [] };
  const started = performance.now();
  const succeeded: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const one = async () => {
    report.requests++;
    const sent = performance.now();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).catch((err: unknown) => {
        if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
        report.retried++;
        return fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      });
      const body = (await res.text()).trim();
      if (res.status !== 200) throw new Error(`status ${res.status}: ${body.slice(0, 80)}`);
      report.bodies[body] = (report.bodies[body] ?? 0) + 1;
      succeeded.push(sent);
      report.slowestMs = Math.max(report.slowestMs, Math.round(performance.now() - sent));
    } catch (err) {
      report.failed++;
      const cause = (err as { cause?: Error }).cause;
      if (report.failures.length < 5) report.failures.push(`${new Date().toISOString()} ${(err as Error).message}${cause ? `: ${cause.message}` : ''}`);
    }
  };
  const timer = setInterval(() => {
    const p = one().finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      const ended = performance.now();
      await Promise.all(inFlight);
      const times = [started, ...succeeded.sort((a, b) => a - b), ended];
      let gap = 0;
      for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
      report.longestGapMs = Math.round(Math.max(0, gap - everyMs));
      return report;
    },
  };
}
