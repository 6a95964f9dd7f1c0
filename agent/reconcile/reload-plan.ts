/**
 * Which updates are reloads in place (`x-agent.reload`), and the containers a reload kept.
 *
 * An update is a reload when the running container runs the last applied spec, binds live
 * folders for the repository folders, and the desired spec differs from that one in the
 * content of those folders only. Anything else (an image, a variable, a file bind) recreates
 * the container as usual.
 */
import { canonicalJson } from '../core/canonical.js';
import { LABELS } from '../core/labels.js';
import { isLivePath } from '../apply/live-files.js';
import type { ActualState } from '../model/actual.js';
import type { ContainerSpec } from '../model/desired.js';
import type { PlanStep, ReloadMount } from '../model/plan.js';
import type { AppliedRecord } from '../model/records.js';

/** The running container a reload kept is seen with the hash of the spec it now runs. */
export function recogniseReloads(actual: ActualState, applied: Readonly<Record<string, AppliedRecord>>): ActualState {
  const services = { ...actual.services };
  for (const [name, o] of Object.entries(actual.services)) {
    const kept = applied[name]?.container;
    if (!o.current || !kept || o.current.id !== kept.id || o.current.labels[LABELS.specHash] !== kept.label) continue;
    services[name] = { ...o, current: { ...o.current, labels: { ...o.current.labels, [LABELS.specHash]: applied[name]!.hash } } };
  }
  return { ...actual, services };
}

/** The live folders a step changes, when it is a reload; undefined when the container must be recreated. */
export function reloadOf(step: PlanStep, actual: ActualState, applied: AppliedRecord | undefined, filesRoot: string, exists: (path: string) => boolean): ReloadMount[] | undefined {
  const current = actual.services[step.service]?.current;
  if (step.action !== 'update' || !step.from || !step.to?.agent.reload || step.held || step.paused || step.deferred) return undefined;
  // An unhealthy container is recreated: a reload would be judged by a gate it fails already.
  if (!applied || applied.hash !== step.from.hash || !current || current.status !== 'running' || current.health === 'unhealthy') return undefined;
  if (withoutFolderContent(applied.spec) !== withoutFolderContent(step.to.spec)) return undefined;
  const mounts: ReloadMount[] = [];
  for (const [i, m] of step.to.spec.volumes.entries()) {
    const before = applied.spec.volumes[i];
    if (!m.project || m.project.kind !== 'dir' || !before?.project || before.project.digest === m.project.digest) continue;
    const bound = current.mounts?.find((x) => x.target === m.target);
    // A container created before x-agent.reload binds the copy itself: recreated once.
    if (!bound || !isLivePath(filesRoot, bound.source) || !exists(bound.source)) return undefined;
    mounts.push({ target: m.target, path: bound.source, from: before.project.digest, to: m.project.digest });
  }
  return mounts.length > 0 ? mounts : undefined;
}

/** The spec with the content of its repository folders left out (their paths stay). */
function withoutFolderContent(spec: ContainerSpec): string {
  return canonicalJson({ ...spec, volumes: spec.volumes.map((m) => (m.project?.kind === 'dir' ? { ...m, source: m.project.path, project: { ...m.project, digest: '' } } : m)) });
}
