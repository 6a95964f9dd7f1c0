/**
 * Steady client traffic for measuring an update's effect: a request every `everyMs` (each one
 * on its own, not waiting for the last), what every answer was, how many failed (an error or a
 * status other than 200), and the longest time without a successful answer.
 */
export interface TrafficReport {
  requests: number;
  failed: number;
  /** The longest time between two successful answers (or from the start to the first), in ms. */
  longestGapMs: number;
  /** Successful answers by body (trimmed). */
  bodies: Record<string, number>;
  /** The first few failures, for a report. */
  failures: string[];
}

export function startTraffic(url: string, everyMs = 10, timeoutMs = 5000): { stop(): Promise<TrafficReport> } {
  const report: TrafficReport = { requests: 0, failed: 0, longestGapMs: 0, bodies: {}, failures: [] };
  const started = performance.now();
  let lastOk = started;
  const inFlight = new Set<Promise<void>>();
  const one = async () => {
    report.requests++;
    const sent = performance.now();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      const body = (await res.text()).trim();
      if (res.status !== 200) throw new Error(`status ${res.status}: ${body.slice(0, 80)}`);
      report.bodies[body] = (report.bodies[body] ?? 0) + 1;
      // A gap is measured between the requests' sending times: a slow answer is not a gap.
      report.longestGapMs = Math.max(report.longestGapMs, sent - lastOk);
      lastOk = Math.max(lastOk, sent);
    } catch (err) {
      report.failed++;
      if (report.failures.length < 5) report.failures.push(`${new Date().toISOString()} ${(err as Error).message}${(err as { cause?: Error }).cause ? `: ${(err as { cause: Error }).cause.message}` : ''}`);
    }
  };
  const timer = setInterval(() => {
    const p = one().finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      report.longestGapMs = Math.max(report.longestGapMs, performance.now() - lastOk - everyMs);
      report.longestGapMs = Math.round(Math.max(0, report.longestGapMs));
      return report;
    },
  };
}
