import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../agent/docker/dockerode-adapter.js';

const require = createRequire(import.meta.url);
const fromDockerode = (name: string) => require.resolve(name, { paths: [require.resolve('dockerode')] });

describe('dependencies of dockerode the agent does not use', () => {
  it('are not loaded with the adapter, and load for real when first used', () => {
    const grpcFile = fromDockerode('@grpc/grpc-js');
    const standIn = require.cache[grpcFile]?.exports as Record<string, unknown>;
    expect(standIn).toBeDefined();
    // no real grpc module evaluated yet: its files other than the entry are absent from the cache
    expect(Object.keys(require.cache).filter((f) => f.includes('/@grpc/grpc-js/build/src/') && f !== grpcFile)).toEqual([]);
    expect(typeof standIn.Server).toBe('function');
    expect(require.cache[grpcFile]?.exports).not.toBe(standIn);

    const modem = require.resolve('docker-modem', { paths: [require.resolve('dockerode')] });
    const ssh2 = require.resolve('ssh2', { paths: [modem] });
    const { Client } = require.cache[ssh2]?.exports as { Client: new () => { on: unknown; end(): void } };
    const client = new Client();
    expect(typeof client.on).toBe('function');
    expect(client.constructor.name).toBe('Client');
  });
});
