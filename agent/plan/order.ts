/**
 * The one dependency walk: groups of services where each group depends only on earlier groups,
 * so the services of a group may run in parallel. Each group is sorted by name, so the same
 * input always gives the same order. Validation refuses cycles; members of one, if any, form
 * the last group, by name.
 */
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
