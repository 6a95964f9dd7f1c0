/**
 * Operating the agent unattended: /healthz and /metrics on the loopback listener, maintenance
 * windows (an update waits, `apply --now` forces it), and certificate renewal with a reload
 * only when a certificate changed.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { buildImage } from '../harness/docker-util.js';
import { BUSYBOX_BASE } from '../harness/images.js';
import { freePort } from '../harness/ports.js';
import { AgentFixture, eventually } from './support/agent-cli.js';

let f: AgentFixture;
beforeEach(async () => {
  f = await AgentFixture.create();
});
afterEach(async () => {
  await f.cleanup();
});

describe('the HTTP listener: /healthz and /metrics', () => {
  it('answers on 127.0.0.1 with the agent health and Prometheus metrics', async () => {
    const port = await freePort();
    f.writeDesired(f.webYaml({ version: '1.0.0' }));
    const agent = f.start('run', ['--interval', '2s', '--listen', `127.0.0.1:${port}`]);
    try {
      await eventually('the first deploy', async () => (await f.page()) === '1.0.0', 60_000);
      await eventually('the transaction to be recorded', async () => (await f.status()).services[0]?.lastTransaction?.result === 'succeeded', 30_000);
      const health = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
      expect(health).toMatchObject({ status: 'ok' });
      await eventually('ready in /healthz', async () => ((await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { ready: boolean }).ready, 30_000);

      f.writeDesired(f.webYaml({ version: '1.3.0' }));
      await eventually('the rollback', async () => (await f.status()).services[0]?.lastTransaction?.result === 'rolled-back', 60_000);
      await eventually('the metrics of the failed pass', async () => (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).includes('gitops_agent_rollbacks_total{service="web"} 1'), 30_000);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/gitops_agent_transactions_total\{service="web",result="succeeded"\} 1/);
      expect(metrics).toMatch(/gitops_agent_transactions_total\{service="web",result="rolled-back"\} 1/);
      expect(metrics).toMatch(/gitops_agent_reconcile_duration_seconds_count\{result="[a-z-]+"\} \d+/);
      expect(metrics).toMatch(/gitops_agent_last_successful_sync_timestamp_seconds \d+/);
      expect(metrics).toMatch(/gitops_agent_ready 0/);
      expect(metrics).toMatch(/gitops_agent_process_resident_memory_bytes \d+/);
      expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    } finally {
      await f.stop(agent);
    }
  });
});

describe('maintenance windows', () => {
  it('an update outside the window waits and status says until when; apply --now applies it', async () => {
    const yaml = (v: string) => f.webYaml({ version: v }).replace('    x-agent:\n      policy: auto\n', '    x-agent:\n      policy: auto\n      window: {schedule: "0 3 1 1 *", duration: 1h, timezone: UTC}\n');
    f.writeDesired(yaml('1.0.0'));
    expect((await f.run('apply')).code).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.0.0');
    f.writeDesired(yaml('1.1.0'));
    // Nothing fails, but the host is not yet as desired: apply says so (exit 10) and why.
    const waiting = await f.run('apply');
    expect(waiting.code, waiting.stdout + waiting.stderr).toBe(EXIT.changesPending);
    expect(waiting.stderr).toMatch(/not as desired yet: web: waiting for the maintenance window/);
    expect(await f.page()).toBe('1.0.0');
    const s = await f.status();
    expect(s.services[0]?.pending).toMatchObject({ action: 'none', nextWindow: expect.stringMatching(/-01-01T03:00:00\.000Z$/) });
    expect((await f.run('status')).stdout).toMatch(/update pending until its maintenance window opens/);
    const forced = await f.run('apply', ['--now', 'web']);
    expect(forced.code, forced.stdout + forced.stderr).toBe(EXIT.ok);
    expect(await f.page()).toBe('1.1.0');
  });
});

describe('certificate renewal', () => {
  it('runs certbot renew on schedule; reloads the service and checks it only when a certificate changed', async () => {
    // A stand-in for the certbot image: `renew` runs the deploy hook when a renewal is due.
    const certbot = 'gadt-local/certbot:test';
    await buildImage(f.h.docker, certbot, {
      Dockerfile: `FROM ${BUSYBOX_BASE}\nCOPY certbot.sh /certbot.sh\nENTRYPOINT ["/bin/sh", "/certbot.sh"]\n`,
      'certbot.sh': { mode: 0o755, content: 'while [ $# -gt 0 ]; do case "$1" in --deploy-hook) hook="$2"; shift;; esac; shift; done\nif [ -f /etc/letsencrypt/due ]; then rm /etc/letsencrypt/due; echo "Renewing example.org"; RENEWED_LINEAGE=/etc/letsencrypt/live/example.org sh -c "$hook"; echo "Congratulations, all renewals succeeded"; else echo "No renewals were attempted."; fi\n' },
    });
    const le = join(f.root, 'letsencrypt');
    mkdirSync(le);
    const job = `x-agent:\n  jobs:\n    renew:\n      schedule: "*/2 * * * * *"\n      certbot:\n        image: ${certbot}\n        volumes: ["${le}:/etc/letsencrypt"]\n        reload: {service: web, command: ["sh", "-c", "echo reloaded >> /tmp/reloads"]}\n`;
    f.writeDesired(`${f.webYaml({ version: '1.0.0' })}\n${job}`);
    const agent = f.start('run', ['--interval', '1h', '--listen', '']);
    try {
      await eventually('a renewal run with nothing due', async () => (await f.status()).jobs[0]?.lastMessage === 'no certificate was due for renewal', 60_000);
      // The first deploy may still be in its health gate (a loaded machine): the job runs every 2 s from the start.
      await eventually('the first deploy', async () => (await f.status()).services[0]?.lastTransaction?.result === 'succeeded', 60_000);
      expect(await f.inService('cat /tmp/reloads 2>/dev/null || echo none', 'web')).toBe('none');
      writeFileSync(join(le, 'due'), '');
      await eventually('the renewal and the reload', async () => (await f.status()).jobs[0]?.lastMessage === 'renewed /etc/letsencrypt/live/example.org; web reloaded and healthy', 30_000, 200).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify((await f.status()).jobs)}`);
      });
      // Runs after it find nothing due again: one renewal, one reload.
      await eventually('the next run', async () => (await f.status()).jobs[0]?.lastMessage === 'no certificate was due for renewal', 30_000, 200);
      expect(existsSync(join(le, 'due'))).toBe(false);
      expect(await f.inService('cat /tmp/reloads', 'web')).toBe('reloaded');
    } finally {
      await f.stop(agent);
    }
  });
});
