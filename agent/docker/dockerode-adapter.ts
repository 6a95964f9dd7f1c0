import { Agent } from 'node:http';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
// before dockerode: see the module
import './defer-unused-deps.js';
import Docker from 'dockerode';
import { AgentError, errorMessage } from '../core/errors.js';
import { asContainerId, type ContainerId } from '../core/ids.js';
import { pullReference } from '../core/image-ref.js';
import type { RestartPolicy } from '../model/desired.js';
import { endpointConfig, restartPolicy, toCreateOptions, toNetworkOptions } from './container-options.js';
import { LABELS } from '../core/labels.js';
import type { CreateContainerRequest, DockerPort, ExecResult, NetworkInfo, PullProgress } from '../ports/docker.js';
import type { ContainerInfo } from '../model/actual.js';
import { resolveRegistryAuth } from './registry-auth.js';
import { runStreamed } from './run-stream.js';
import { OUTPUT_LIMIT, demuxBuffer, toInfo, trim } from './engine-info.js';
import { pullError, statusOf, translate } from './engine-errors.js';


export interface DockerAdapterOptions {
  /** `unix:///path/docker.sock` or `tcp://127.0.0.1:2375`; default: DOCKER_HOST or the standard socket. */
  host?: string;
  /** Path of the Docker CLI config holding registry credentials. */
  dockerConfigPath: string;
  /** Called when a registry needs a credential helper the agent does not run. */
  onCredentialHelper?: (registry: string, helper: string) => void;
}

export function dockerConnectOptions(host: string | undefined): Docker.DockerOptions {
  if (!host) return { socketPath: '/var/run/docker.sock' };
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return { host: url.hostname, port: Number(url.port || 2375), protocol: 'http' };
}

/** The DockerPort over the Engine API, through dockerode. */
export function createDockerAdapter(options: DockerAdapterOptions): DockerPort {
  const docker = new Docker(dockerConnectOptions(options.host));
  // Pings go on a connection of their own: a dockerd shutting down stops its containers while it
  // still answers on connections already open (kept alive), and only refuses new ones.
  const pinger = new Docker({ ...dockerConnectOptions(options.host), agent: new Agent({ keepAlive: false }) } as Docker.DockerOptions);
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw translate(err, what);
    }
  };
  // The engine's duplicate check on network names is racy: two transactions of one wave creating
  // the stack's network at once make two networks of one name, which no name can address after.
  // One creation per name at a time, in this process (the state directory's lock keeps others out).
  const networkQueue = new Map<string, Promise<unknown>>();
  const oneAtATime = <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const run = (networkQueue.get(name) ?? Promise.resolve()).catch(() => undefined).then(fn);
    networkQueue.set(name, run);
    void run.finally(() => networkQueue.get(name) === run && networkQueue.delete(name)).catch(() => undefined);
    return run;
  };

  return {
    async ping(signal) {
      await call('ping', () => (pinger.ping as unknown as (o: object) => Promise<unknown>).call(pinger, { abortSignal: signal }));
    },

    async listContainers(labels) {
      const filters = { label: Object.entries(labels).map(([k, v]) => (v === true ? k : `${k}=${v}`)) };
      const list = await call('list containers', () => docker.listContainers({ all: true, filters }));
      const infos = await Promise.all(list.map((c) => this.inspectContainer(c.Id)));
      return infos.filter((c): c is ContainerInfo => c !== undefined);
    },

    async inspectContainer(idOrName) {
      try {
        return toInfo(await docker.getContainer(idOrName).inspect());
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw translate(err, `inspect container ${idOrName}`);
      }
    },

    async hasImage(ref) {
      try {
        await docker.getImage(pullReference(ref)).inspect();
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw translate(err, `inspect image ${ref}`);
      }
    },

    async pullImage(ref, opts = {}) {
      const { auth, helper } = await resolveRegistryAuth(ref, options.dockerConfigPath);
      if (helper) options.onCredentialHelper?.(ref, helper);
      const target = pullReference(ref);
      let stream: NodeJS.ReadableStream;
      try {
        stream = (await docker.pull(target, { authconfig: auth, abortSignal: opts.signal, ...(opts.platform ? { platform: opts.platform } : {}) })) as NodeJS.ReadableStream;
      } catch (err) {
        throw pullError(err, ref);
      }
      await new Promise<void>((resolve, reject) => {
        const layers = new Map<string, { current: number; total: number }>();
        const onAbort = () => {
          (stream as unknown as { destroy?: () => void }).destroy?.();
          reject(new AgentError('ABORTED', `pull of ${ref} aborted`));
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        docker.modem.followProgress(
          stream,
          (err: unknown) => {
            opts.signal?.removeEventListener('abort', onAbort);
            if (err) reject(pullError(err, ref));
            else resolve();
          },
          (event: { id?: string; progressDetail?: { current?: number; total?: number } }) => {
            if (!opts.onProgress || !event.id || !event.progressDetail?.total) return;
            layers.set(event.id, { current: event.progressDetail.current ?? 0, total: event.progressDetail.total });
            const p: PullProgress = { downloadedBytes: 0, totalBytes: 0 };
            for (const l of layers.values()) {
              p.downloadedBytes += l.current;
              p.totalBytes += l.total;
            }
            opts.onProgress(p);
          },
        );
      });
    },

    async createContainer(req: CreateContainerRequest) {
      const refused = (err: AgentError) => {
        throw new AgentError('CONTAINER_CREATE_FAILED', err.message, { cause: err, data: { name: req.name }, class: err.code === 'DOCKER_UNAVAILABLE' ? 'transient' : 'terminal' });
      };
      const container = await call(`create container ${req.name}`, () => docker.createContainer(toCreateOptions(req.name, req.spec, req.labels))).catch(refused);
      // Engine API 1.41 takes one network at create: the others are joined before the start, as Compose does.
      for (const a of (req.spec.networks ?? []).slice(1)) {
        await call(`connect ${req.name} to ${a.network}`, () => docker.getNetwork(a.network).connect({ Container: container.id, EndpointConfig: endpointConfig(a) })).catch(refused);
      }
      return asContainerId(container.id);
    },

    async startContainer(id) {
      await call(`start container ${id}`, async () => {
        try {
          await docker.getContainer(id).start();
        } catch (err) {
          if (statusOf(err) === 304) return; // already running
          throw err;
        }
      }).catch((err: AgentError) => {
        if (err.code === 'DOCKER_UNAVAILABLE') throw err;
        throw new AgentError('CONTAINER_START_FAILED', err.message, { cause: err, data: { id } });
      });
    },

    async stopContainer(id, timeoutMs) {
      await call(`stop container ${id}`, async () => {
        try {
          await docker.getContainer(id).stop({ t: Math.ceil(timeoutMs / 1000) });
        } catch (err) {
          if (statusOf(err) === 304 || statusOf(err) === 404) return;
          throw err;
        }
      });
    },

    async removeContainer(id) {
      await call(`remove container ${id}`, async () => {
        try {
          await docker.getContainer(id).remove({ force: true, v: false });
        } catch (err) {
          if (statusOf(err) === 404) return;
          // 409 "removal already in progress": wait for the engine to finish it.
          if (statusOf(err) === 409 && /in progress/.test(errorMessage(err))) return;
          throw err;
        }
      });
    },

    async renameContainer(id, name) {
      await call(`rename container ${id} to ${name}`, () => docker.getContainer(id).rename({ name }));
    },

    async setRestartPolicy(id: ContainerId, policy: RestartPolicy) {
      await call(`update container ${id}`, () => docker.getContainer(id).update({ RestartPolicy: restartPolicy(policy) }));
    },

    async exec(id, argv, opts): Promise<ExecResult> {
      return call(`exec in ${id}`, async () => {
        const exec = await docker.getContainer(id).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({ hijack: true, stdin: false });
        const sink = new PassThrough();
        let output = '';
        sink.on('data', (chunk: Buffer) => {
          if (output.length < OUTPUT_LIMIT) output += chunk.toString('utf8');
        });
        docker.modem.demuxStream(stream, sink, sink);
        const finished = new Promise<'done'>((resolve) => stream.on('end', () => resolve('done')).on('close', () => resolve('done')));
        let timer: NodeJS.Timeout | undefined;
        let onAbort: (() => void) | undefined;
        const timedOut = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), opts.timeoutMs);
          onAbort = () => resolve('timeout');
          opts.signal?.addEventListener('abort', onAbort, { once: true });
        });
        const outcome = await Promise.race([finished, timedOut]);
        clearTimeout(timer);
        // The signal lives as long as the agent (`agent run`): a listener left on it would keep
        // this exec's stream and output alive, one more per health check run by exec.
        if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
        if (outcome === 'timeout') {
          stream.destroy();
          return { exitCode: -1, output: `${trim(output)}\n(timed out after ${opts.timeoutMs} ms)`.trim() };
        }
        const info = await exec.inspect();
        return { exitCode: info.ExitCode ?? -1, output: trim(output) };
      });
    },

    async logs(id, tail) {
      return call(`logs of ${id}`, async () => {
        const buf = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail, follow: false })) as unknown as Buffer;
        return trim(demuxBuffer(buf));
      });
    },

    async exits(id, sinceMs) {
      return call(`events of ${id}`, async () => {
        // Past events only (`until` now): the engine answers at once and closes the stream.
        const stream = (await docker.getEvents({ since: Math.floor(sinceMs / 1000), until: Math.ceil(Date.now() / 1000), filters: { container: [id], event: ['die'] } })) as unknown as NodeJS.ReadableStream;
        let text = '';
        for await (const chunk of stream) text += chunk.toString();
        const out: { exitCode: number; at: number }[] = [];
        for (const line of text.split('\n').filter(Boolean)) {
          const e = JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> }; timeNano?: number; time?: number };
          const code = Number(e.Actor?.Attributes?.exitCode);
          if (Number.isInteger(code)) out.push({ exitCode: code, at: e.timeNano ? Math.floor(e.timeNano / 1e6) : (e.time ?? 0) * 1000 });
        }
        return out.filter((x) => x.at >= sinceMs - 1000).sort((a, b) => a.at - b.at);
      });
    },

    async ensureVolume(name, labels, driver) {
      if (await this.volumeExists(name)) return;
      await call(`create volume ${name}`, () => docker.createVolume({ Name: name, Labels: labels, ...(driver ? { Driver: driver.name, DriverOpts: driver.options } : {}) }));
    },

    async execStream(id, argv, opts = {}) {
      return call(`exec in ${id}`, async () => {
        const exec = await docker.getContainer(id).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, AttachStdin: !!opts.stdin });
        const stream = (await exec.start({ hijack: true, stdin: !!opts.stdin })) as Duplex;
        if (opts.stdin) {
          const input = opts.stdin;
          input.on('error', (err) => stream.destroy(err));
          // End only our half: the output keeps flowing until the command exits.
          input.pipe(stream, { end: false }).on('unpipe', () => undefined);
          input.on('end', () => (stream as Duplex & { end(): void }).end());
        }
        return {
          output: stream,
          // The output can end before the engine marks the process finished: poll briefly.
          exitCode: async () => {
            for (let i = 0; i < 600; i++) {
              const info = await exec.inspect();
              if (!info.Running && info.ExitCode !== null) return info.ExitCode ?? -1;
              await new Promise((r) => setTimeout(r, 50));
            }
            return -1;
          },
        };
      });
    },

    async getArchive(id, path) {
      return call(`read ${path} of ${id}`, async () => (await docker.getContainer(id).getArchive({ path })) as unknown as Readable);
    },

    async putArchive(id, path, archive) {
      await call(`write into ${path} of ${id}`, async () => {
        await docker.getContainer(id).putArchive(archive as unknown as NodeJS.ReadableStream, { path });
      });
    },

    async runOnce(image, argv, mounts, opts) {
      return call(`run helper from ${image}`, async () => {
        const c = await docker.createContainer({
          Image: image,
          ...(opts.keepEntrypoint ? { Cmd: argv } : { Entrypoint: [argv[0] as string], Cmd: argv.slice(1) }),
          Labels: opts.labels,
          ...(opts.user ? { User: opts.user } : {}),
          HostConfig: { NetworkMode: opts.networkMode ?? 'none', Mounts: mounts.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })) },
        });
        try {
          await c.start();
          const waited = await Promise.race([c.wait(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), opts.timeoutMs).unref())]);
          const logs = trim(demuxBuffer((await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer));
          if (waited === 'timeout') return { exitCode: -1, output: `${logs}\n(timed out after ${opts.timeoutMs} ms)`.trim() };
          return { exitCode: (waited as { StatusCode: number }).StatusCode, output: logs };
        } finally {
          await c.remove({ force: true }).catch(() => undefined);
        }
      });
    },

    async runStream(req, signal) {
      return call(`run ${req.image}`, () => runStreamed(docker, req, signal));
    },

    async removeVolume(name) {
      try {
        await docker.getVolume(name).remove();
      } catch (err) {
        if (statusOf(err) !== 404) throw translate(err, `remove volume ${name}`);
      }
    },

    async volumeExists(name) {
      try {
        await docker.getVolume(name).inspect();
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        throw translate(err, `inspect volume ${name}`);
      }
    },

    async ensureNetwork(spec, labels) {
      return oneAtATime(spec.name, async () => {
        const existing = await inspectNetwork(docker, spec.name);
        if (existing) {
          const seen = existing.Labels?.[LABELS.networkHash];
          const wanted = labels[LABELS.networkHash];
          if (seen !== undefined && wanted !== undefined && seen !== wanted) throw new AgentError('NETWORK_CHANGED', `network ${spec.name} exists with another definition; the agent does not recreate a network in place`, { data: { network: spec.name } });
          return;
        }
        await call(`create network ${spec.name}`, () => docker.createNetwork(toNetworkOptions(spec, { ...spec.labels, ...labels })));
      });
    },

    async networkExists(name) {
      return (await inspectNetwork(docker, name)) !== undefined;
    },

    async listNetworks(labels) {
      const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
      const list = await call('list networks', () => docker.listNetworks({ filters }));
      const out: NetworkInfo[] = [];
      for (const n of list) {
        const full = await inspectNetwork(docker, n.Id);
        if (full) out.push({ id: full.Id, name: full.Name, labels: full.Labels ?? {}, containers: Object.keys(full.Containers ?? {}) });
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    },

    async setNetworkAliases(id, a) {
      const what = `attach ${id} to ${a.network} as ${a.aliases.join(', ')}`;
      await call(what, async () => {
        const inspected = await docker.getContainer(id).inspect();
        const endpoint = inspected.NetworkSettings?.Networks?.[a.network] as { Aliases?: string[] | null } | undefined;
        if (endpoint && a.aliases.every((x) => endpoint.Aliases?.includes(x))) return;
        const network = docker.getNetwork(a.network);
        if (endpoint) await network.disconnect({ Container: id, Force: false });
        await network.connect({ Container: id, EndpointConfig: endpointConfig(a) });
      });
    },

    async removeNetwork(name) {
      await call(`remove network ${name}`, async () => {
        try {
          await docker.getNetwork(name).remove();
        } catch (err) {
          if (statusOf(err) === 404) return;
          throw err;
        }
      });
    },
  };
}

async function inspectNetwork(docker: Docker, name: string): Promise<Docker.NetworkInspectInfo | undefined> {
  try {
    return (await docker.getNetwork(name).inspect()) as Docker.NetworkInspectInfo;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw translate(err, `inspect network ${name}`);
  }
}
