import type { ContainerInspectInfo } from 'dockerode';
import { asContainerId } from '../core/ids.js';
import type { ContainerInfo, ContainerStatus } from '../model/actual.js';
import { fromRestartPolicy } from './container-options.js';

export const OUTPUT_LIMIT = 8 * 1024;

/** A container as the engine describes it, in the agent's terms. */
export function toInfo(c: ContainerInspectInfo): ContainerInfo {
  const health = c.State.Health;
  const lastLog = health?.Log?.[health.Log.length - 1];
  const test = c.Config.Healthcheck?.Test;
  return {
    id: asContainerId(c.Id),
    name: c.Name.replace(/^\//, ''),
    image: c.Config.Image,
    imageId: c.Image,
    labels: c.Config.Labels ?? {},
    status: c.State.Status as ContainerStatus,
    exitCode: c.State.ExitCode,
    oomKilled: c.State.OOMKilled,
    error: c.State.Error ?? '',
    health: (health?.Status as ContainerInfo['health'] | undefined) ?? 'none',
    healthOutput: trim(lastLog?.Output ?? ''),
    hasHealthcheck: Array.isArray(test) && test.length > 0 && test[0] !== 'NONE',
    ...healthcheckCommand(test, c.Config.Healthcheck?.Timeout),
    restartCount: c.RestartCount,
    startedAt: c.State.StartedAt,
    finishedAt: c.State.FinishedAt,
    restartPolicy: fromRestartPolicy(c.HostConfig.RestartPolicy),
    mounts: (c.Mounts ?? []).map((m) => ({ type: m.Type as 'volume' | 'bind' | 'tmpfs', source: m.Type === 'volume' ? (m.Name ?? '') : m.Source, target: m.Destination })),
  };
}

function healthcheckCommand(test: string[] | undefined, timeoutNs: number | undefined): Pick<ContainerInfo, 'healthcheckCommand'> {
  const timeoutMs = timeoutNs ? Math.round(timeoutNs / 1e6) : 30_000;
  if (test?.[0] === 'CMD' && test.length > 1) return { healthcheckCommand: { argv: test.slice(1), timeoutMs } };
  if (test?.[0] === 'CMD-SHELL' && test[1]) return { healthcheckCommand: { argv: ['/bin/sh', '-c', test[1]], timeoutMs } };
  return {};
}

/** Container logs without a TTY come framed (8-byte headers per chunk); strip the frames. */
export function demuxBuffer(buf: Buffer): string {
  if (!Buffer.isBuffer(buf)) return String(buf);
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const len = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  return i === 0 ? buf.toString('utf8') : out;
}

export function trim(s: string): string {
  const t = s.trim();
  return t.length > OUTPUT_LIMIT ? `...${t.slice(-OUTPUT_LIMIT)}` : t;
}
