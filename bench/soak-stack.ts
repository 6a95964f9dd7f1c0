/**
 * The desired state of the soak run and the commit each cycle makes: a model of the services
 * (fixture image version, an environment value), rendered as the stack file, and the plan of
 * cycles (mostly edits that change nothing for the containers, every k-th a real change, now
 * and then a version that crashes so that a rollback and a revert commit happen).
 */
import type { FixtureImages } from '../test/harness/images.js';

export interface SoakService {
  name: string;
  port: number;
  version: '1.0.0' | '1.1.0';
  value: string;
}

export type CycleKind = 'noop-comment' | 'noop-extension' | 'noop-readme' | 'image' | 'env' | 'rollback';

export interface CyclePlan {
  changeEvery: number;
  rollbackEvery: number;
}

/** What cycle `i` (0-based) commits. Rollbacks come first at a quarter of their period, so the first one falls in the warm-up. */
export function cycleKind(i: number, p: CyclePlan): CycleKind {
  if (p.rollbackEvery > 0 && i % p.rollbackEvery === Math.floor(p.rollbackEvery / 4)) return 'rollback';
  if (i % p.changeEvery === p.changeEvery - 1) return Math.floor(i / p.changeEvery) % 2 === 0 ? 'image' : 'env';
  return (['noop-comment', 'noop-extension', 'noop-readme'] as const)[i % 3] as CycleKind;
}

export const STACK_FILE = 'desired-state/stack.yaml';
export const RENOVATE_JSON = `${JSON.stringify({ $schema: 'https://docs.renovatebot.com/renovate-schema.json', enabledManagers: ['docker-compose'], packageRules: [] }, null, 2)}\n`;

export class SoakModel {
  comment = 0;
  extension = 0;
  readme = 0;

  constructor(
    readonly stack: string,
    readonly images: FixtureImages,
    readonly services: SoakService[],
  ) {}

  /**
   * Applies cycle `i`'s edit to the model; returns the commit message and, for a rollback, the
   * service given the crashing version (the model keeps its good spec: the agent's revert
   * commit puts the file back to it).
   */
  edit(i: number, kind: CycleKind): { message: string; crashing?: SoakService } {
    const svc = this.services[Math.floor(i / 5) % this.services.length] as SoakService;
    switch (kind) {
      case 'noop-comment':
        this.comment = i;
        return { message: `Soak ${i}: edit a comment` };
      case 'noop-extension':
        this.extension = i;
        return { message: `Soak ${i}: edit x-soak` };
      case 'noop-readme':
        this.readme = i;
        return { message: `Soak ${i}: edit the README` };
      case 'image':
        svc.version = svc.version === '1.0.0' ? '1.1.0' : '1.0.0';
        return { message: `Soak ${i}: update ${svc.name} to ${svc.version}` };
      case 'env':
        svc.value = String(i);
        return { message: `Soak ${i}: set VALUE of ${svc.name} to ${i}` };
      case 'rollback':
        return { message: `Soak ${i}: update ${svc.name} to 1.3.0 (crashes at start)`, crashing: svc };
    }
  }

  /** Every file of the repository; `crashing` gets the fixture version that exits at start. */
  files(crashing?: SoakService): Record<string, string> {
    const lines = [
      `# Soak stack: ${this.services.length} web services. Last comment edit: cycle ${this.comment}.`,
      `name: ${this.stack}`,
      `x-soak: {edited: ${this.extension}}`,
      'services:',
    ];
    for (const s of this.services) {
      const image = s === crashing ? this.images['1.3.0'].pinned : this.images[s.version].pinned;
      lines.push(
        `  ${s.name}:`,
        `    image: ${image}`,
        '    network_mode: host',
        '    init: true',
        '    restart: unless-stopped',
        '    stop_grace_period: 2s',
        '    environment:',
        `      PORT: "${s.port}"`,
        `      VALUE: "${s.value}"`,
        '    x-agent:',
        '      policy: auto',
        '      health:',
        '        timeout: 30s',
        '        stabilization: 1s',
        '        probes:',
        `          - http: http://127.0.0.1:${s.port}/`,
        '            interval: 250ms',
      );
    }
    return { [STACK_FILE]: `${lines.join('\n')}\n`, 'renovate.json': RENOVATE_JSON, 'README.md': `Soak host. README edited at cycle ${this.readme}.\n` };
  }

  /** The version each service must run once the cycle is applied. */
  expected(): Record<string, string> {
    return Object.fromEntries(this.services.map((s) => [s.name, s.version]));
  }
}
