/**
 * An HTTP prober for downtime and rollback measurements: GET every `everyMs`, recording each
 * answer's time and body, until stopped.
 */
export interface ProbeSample {
  at: number;
  ok: boolean;
  body: string;
}

export function startProbe(url: string, everyMs = 20): { stop(): Promise<ProbeSample[]> } {
  const samples: ProbeSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        samples.push({ at, ok: res.ok, body: (await res.text()).trim() });
      } catch {
        samples.push({ at, ok: false, body: '' });
      }
      const wait = everyMs - (Date.now() - at);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** The longest run of failed probes, in ms (from the first failure to the next success). */
export function longestOutage(samples: ProbeSample[]): number {
  let longest = 0;
  let downSince: number | undefined;
  for (const s of samples) {
    if (!s.ok && downSince === undefined) downSince = s.at;
    if (s.ok && downSince !== undefined) {
      longest = Math.max(longest, s.at - downSince);
      downSince = undefined;
    }
  }
  return longest;
}

/** First sample at or after `t` that succeeded with `body` (when given). */
export function firstServingAfter(samples: ProbeSample[], t: number, body?: string): number | undefined {
  return samples.find((s) => s.at >= t && s.ok && (body === undefined || s.body === body))?.at;
}
