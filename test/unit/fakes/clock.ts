import type { Clock } from '../../../agent/core/clock.js';

/** A clock whose sleeps return at once and move time forward: health gates run in microseconds. */
export function fakeClock(start = Date.UTC(2026, 10, 22, 10, 0, 0)): Clock & { advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}
