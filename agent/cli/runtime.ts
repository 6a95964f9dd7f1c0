import pino, { type Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import { loadConfig, loadInterpolationEnv, type AgentConfig, type ConfigOverrides } from '../config/config.js';
import { createDockerAdapter } from '../docker/dockerode-adapter.js';
import type { DockerPort } from '../docker/port.js';
import { runHealthGate } from '../health/gate.js';
import { failpointsFromEnv } from '../apply/failpoints.js';
import { newTxId } from '../apply/transaction.js';
import type { BackupHook } from '../apply/types.js';
import type { ReconcileContext } from '../reconcile/reconcile.js';
import { createLocalDirSource } from '../source/local-dir.js';
import type { DesiredSource } from '../source/source.js';
import { StateStore } from '../state/store.js';

export interface Runtime {
  config: AgentConfig;
  log: Logger;
  clock: Clock;
  docker: DockerPort;
  store: StateStore;
  source: DesiredSource;
  reconcileContext(): Promise<ReconcileContext>;
}

/** Backups arrive with the backup issue; until then the hook point does nothing. */
const noBackup: BackupHook = async () => undefined;

/** Wires the agent from its configuration: the only place that picks the adapters. */
export async function createRuntime(overrides: ConfigOverrides, options: { defaultLogLevel?: string } = {}): Promise<Runtime> {
  const config = await loadConfig(overrides);
  const level = overrides.logLevel ?? process.env.AGENT_LOG_LEVEL ?? options.defaultLogLevel ?? config.logLevel;
  const log = pino({ level, base: { name: 'gitops-agent' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
  const clock = systemClock;
  const docker = createDockerAdapter({
    host: config.docker.host,
    dockerConfigPath: config.docker.configPath,
    onCredentialHelper: (ref, helper) => log.warn({ image: ref, helper }, 'Registry credentials need a credential helper, which the agent does not run; pulling without credentials'),
  });
  const store = new StateStore(config.stateDir);
  const source = createLocalDirSource(config.source.path);
  return {
    config,
    log,
    clock,
    docker,
    store,
    source,
    async reconcileContext() {
      const ctx: ReconcileContext = {
        source,
        docker,
        env: await loadInterpolationEnv(config),
        defaultStack: config.stack,
        log,
        store,
        clock,
        concurrency: config.reconcile.concurrency,
        backup: noBackup,
        failpoint: failpointsFromEnv(),
        gate: (id, opts, signal) => runHealthGate({ docker, clock }, id, opts, signal),
        newTxId: () => newTxId(clock.now()),
      };
      if (config.reconcile.prune !== undefined) ctx.prune = config.reconcile.prune;
      return ctx;
    },
  };
}
