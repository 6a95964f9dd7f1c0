/**
 * Dependency order: every service after the services it depends on, ties broken by name so
 * that the same input always gives the same order. Assumes no cycles (validation refuses them);
 * members of a cycle, if any, are appended by name.
 */
export function dependencyOrder(services: { name: string; dependsOn: string[] }[]): string[] {
  const names = new Set(services.map((s) => s.name));
  const pending = new Map(services.map((s) => [s.name, new Set(s.dependsOn.filter((d) => names.has(d) && d !== s.name))]));
  const order: string[] = [];
  while (pending.size > 0) {
    const ready = [...pending.entries()].filter(([, deps]) => deps.size === 0).map(([n]) => n).sort();
    if (ready.length === 0) {
      order.push(...[...pending.keys()].sort());
      break;
    }
    const next = ready[0] as string;
    order.push(next);
    pending.delete(next);
    for (const deps of pending.values()) deps.delete(next);
  }
  return order;
}

/** Groups in dependency order where each group only depends on earlier groups: they may run in parallel. */
export function dependencyWaves(services: { name: string; dependsOn: string[] }[]): string[][] {
  const names = new Set(services.map((s) => s.name));
  const pending = new Map(services.map((s) => [s.name, new Set(s.dependsOn.filter((d) => names.has(d) && d !== s.name))]));
  const waves: string[][] = [];
  while (pending.size > 0) {
    let wave = [...pending.entries()].filter(([, deps]) => deps.size === 0).map(([n]) => n).sort();
    if (wave.length === 0) wave = [...pending.keys()].sort();
    waves.push(wave);
    for (const n of wave) pending.delete(n);
    for (const deps of pending.values()) for (const n of wave) deps.delete(n);
  }
  return waves;
}
