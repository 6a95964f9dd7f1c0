import type { Plan, PlanStep } from '../model/plan.js';

/** A step as people see it (`agent plan --json`, `agent apply --json`): images and hashes, never a spec. */
export interface PlanStepView {
  service: string;
  action: PlanStep['action'];
  cause: PlanStep['cause'];
  reasons: string[];
  wave: number;
  from?: { image: string; hash: string };
  to?: { image: string; hash: string; revision: string };
  held?: PlanStep['held'];
  paused?: boolean;
  deferred?: string;
  dependsOn: string[];
}

export interface PlanView {
  stack: string;
  revision: string;
  changes: number;
  steps: PlanStepView[];
  networks: Plan['networks'];
}

/** The plan without the specs it carries (they hold environment values, so secrets). */
export function planView(plan: Plan): PlanView {
  return { stack: plan.stack, revision: plan.revision, changes: plan.changes, steps: plan.steps.map(stepView), networks: plan.networks };
}

export function stepView(s: PlanStep): PlanStepView {
  const v: PlanStepView = { service: s.service, action: s.action, cause: s.cause, reasons: s.reasons, wave: s.wave, dependsOn: s.dependsOn.map((d) => d.service) };
  if (s.from) v.from = { image: s.from.image, hash: s.from.hash };
  if (s.to) v.to = { image: s.to.image, hash: s.to.hash, revision: s.to.revision };
  if (s.held) v.held = s.held;
  if (s.paused) v.paused = true;
  if (s.deferred) v.deferred = s.deferred;
  return v;
}
