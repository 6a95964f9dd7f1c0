/**
 * dockerode loads, when it is first required, the SSH client (for ssh:// engines), gRPC and
 * protobuf (for BuildKit sessions): about 11 MiB of resident memory in a long-running agent that
 * uses none of them (it talks to unix:// or tcp:// engines and never builds). This module, imported
 * before dockerode, puts stand-ins for them in the CommonJS cache, and each stand-in loads the
 * real package the first time it is used, so nothing is lost, only deferred.
 */
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function resolveFrom(name: string, from: string): string | undefined {
  try {
    return require.resolve(name, { paths: [require.resolve(from)] });
  } catch {
    return undefined;
  }
}

function seed(file: string, exports: unknown): void {
  if (require.cache[file]) return;
  const m = new Module(file) as NodeJS.Module & { filename: string; loaded: boolean };
  m.filename = file;
  m.loaded = true;
  m.exports = exports;
  require.cache[file] = m;
}

/** The real module, the first time it is needed; the stand-in leaves the cache first. */
function loader(file: string): () => Record<string | symbol, unknown> {
  let real: Record<string | symbol, unknown> | undefined;
  return () => {
    if (!real) {
      delete require.cache[file];
      real = require(file) as Record<string | symbol, unknown>;
    }
    return real;
  };
}

function deferModules(): void {
  const modem = resolveFrom('docker-modem', 'dockerode');
  const ssh2 = modem && resolveFrom('ssh2', modem);
  if (ssh2) {
    const load = loader(ssh2);
    // docker-modem reads `require('ssh2').Client` when it loads, and constructs it for ssh:// only.
    const Client = function (this: unknown, ...args: unknown[]) {
      const Real = load().Client as new (...a: unknown[]) => object;
      return new Real(...args);
    };
    seed(ssh2, { Client });
  }
  for (const name of ['@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs']) {
    const file = resolveFrom(name, 'dockerode');
    if (!file) continue;
    const load = loader(file);
    seed(file, new Proxy({}, { get: (_t, key) => load()[key], has: (_t, key) => key in load() }));
  }
}

deferModules();
