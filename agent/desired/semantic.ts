import type { Dependency, PortBinding } from '../model/desired.js';

export interface ServiceFacts {
  name: string;
  dependsOn: Dependency[];
  ports: PortBinding[];
}

export interface SemanticProblem {
  service: string;
  /** Path below the service where the problem is: ['depends_on', 'db'] etc. */
  at: (string | number)[];
  message: string;
}

/** Checks across services that the schema cannot express: references, cycles, port clashes. */
export function checkServices(services: ServiceFacts[], dependsOnIsList: (service: string) => boolean): SemanticProblem[] {
  const problems: SemanticProblem[] = [];
  const names = new Set(services.map((s) => s.name));
  for (const s of services) {
    s.dependsOn.forEach((d, i) => {
      const at = ['depends_on', dependsOnIsList(s.name) ? i : d.service];
      if (d.service === s.name) problems.push({ service: s.name, at, message: `service "${s.name}" depends on itself` });
      // `required: false`: the dependency may be absent (Compose: another profile, another file).
      else if (!names.has(d.service) && d.required !== false) problems.push({ service: s.name, at, message: `depends on unknown service "${d.service}"` });
    });
  }
  const cycle = findCycle(services.filter((s) => s.dependsOn.every((d) => names.has(d.service) && d.service !== s.name)));
  if (cycle) problems.push({ service: cycle[0] as string, at: ['depends_on'], message: `dependency cycle: ${cycle.join(' -> ')}` });

  const published: { service: string; port: PortBinding }[] = [];
  for (const s of services) {
    s.ports.forEach((p, i) => {
      if (p.hostPort === 0) return;
      const clash = published.find((o) => o.port.hostPort === p.hostPort && o.port.protocol === p.protocol && ipsOverlap(o.port.hostIp, p.hostIp));
      if (clash) problems.push({ service: s.name, at: ['ports', i], message: `host port ${p.hostPort}/${p.protocol} is already published by service "${clash.service}"` });
      else published.push({ service: s.name, port: p });
    });
  }
  return problems;
}

/** A dependency cycle as a path `a -> b -> a`, or undefined. Deterministic: services in name order. */
export function findCycle(services: { name: string; dependsOn: Dependency[] }[]): string[] | undefined {
  const deps = new Map(services.map((s) => [s.name, s.dependsOn.map((d) => d.service).sort()]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'visiting') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of deps.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of [...deps.keys()].sort()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

function ipsOverlap(a: string, b: string): boolean {
  const wildcard = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '::';
  return wildcard(a) || wildcard(b) || a === b;
}
