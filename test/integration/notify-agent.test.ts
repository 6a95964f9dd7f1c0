/**
 * The agent's notifications end to end: a configuration file with a webhook channel and an
 * SES channel (local endpoints), a failed update, an applied manual update, an invalid desired
 * state repeated (one message: de-duplicated), a failing channel visible in the status, and no
 * secret in any message.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { EXIT } from '../../agent/cli/exit-codes.js';
import { startSesServer, type SesTestServer } from '../harness/ses-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../harness/webhook-receiver.js';
import { AgentFixture, eventually } from './support/agent-cli.js';

let hooks: WebhookReceiver;
let ses: SesTestServer;
let f: AgentFixture;

beforeAll(async () => {
  hooks = await startWebhookReceiver();
  ses = await startSesServer();
});
afterAll(async () => {
  await hooks.close();
  await ses.close();
});
beforeEach(async () => {
  f = await AgentFixture.create();
});
afterEach(async () => {
  await f.cleanup();
});

it('tells what happened, to which service, from which version to which, why, and what to do; once per problem', async () => {
  const secret = 'sekret-token-9f8e7d';
  writeFileSync(join(f.root, 'secrets.env'), `APP_TOKEN=${secret}\n`);
  const config = join(f.root, 'config.yaml');
  writeFileSync(
    config,
    [
      `envFile: ${join(f.root, 'secrets.env')}`,
      'notifications:',
      '  channels:',
      '    chat:',
      `      webhook: {url: "${hooks.url}/chat", format: json}`,
      '    mail:',
      '      events: [update-failed]',
      `      ses: {region: eu-west-1, from: agent@example.org, to: [ops@example.org], endpoint: "${ses.endpoint}"}`,
      '    broken:',
      `      webhook: {url: "${hooks.url}/status/500", format: slack}`,
      '',
    ].join('\n'),
  );
  const env = { AGENT_CONFIG: config, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG' };
  const yaml = (v: string, policy = 'manual') => f.webYaml({ version: v, env: { TOKEN: '${APP_TOKEN}' } }).replace('policy: auto', `policy: ${policy}`);

  f.writeDesired(yaml('1.0.0'));
  expect((await f.run('apply', [], env)).code).toBe(EXIT.ok);
  f.writeDesired(yaml('1.1.0'));
  expect((await f.run('apply', [], env)).code).toBe(EXIT.ok);
  // The secret is in the container's environment: it must not leave the host in any message.
  f.writeDesired(yaml('1.3.0'));
  expect((await f.run('apply', [], env)).code).toBe(EXIT.updateFailed);

  const chat = hooks.on('/chat').map((r) => r.body as { type: string; service?: string; from?: string; to?: string; title: string; reason?: string; action?: string });
  expect(chat.map((e) => e.type)).toEqual(['update-applied', 'update-failed']);
  expect(chat[0]).toMatchObject({ service: 'web', title: 'web updated web:1.0.0 -> web:1.1.0' });
  expect(chat[1]).toMatchObject({ service: 'web', title: 'web update web:1.1.0 -> web:1.3.0 failed and was rolled back' });
  expect(chat[1]?.from).toContain(':1.1.0@');
  expect(chat[1]?.to).toContain(':1.3.0@');
  expect(chat[1]?.reason).toContain('container exited with code 3');
  expect(chat[1]?.action).toContain('held');

  await eventually('the SES message', async () => ses.requests.length > 0, 10_000);
  const mail = ses.requests[0]?.body as { FromEmailAddress: string; Destination: { ToAddresses: string[] }; Content: { Simple: { Subject: { Data: string }; Body: { Text: { Data: string } } } } };
  expect(ses.requests[0]?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 /);
  expect(mail.FromEmailAddress).toBe('agent@example.org');
  expect(mail.Destination.ToAddresses).toEqual(['ops@example.org']);
  expect(mail.Content.Simple.Subject.Data).toContain('web update web:1.1.0 -> web:1.3.0 failed and was rolled back');
  expect(mail.Content.Simple.Body.Text.Data).toContain('fatal: config invalid');
  expect(ses.requests).toHaveLength(1);

  // An invalid desired state, applied twice: one message, the repeat held back.
  f.writeDesired(`${yaml('1.2.0')}\n    bogus: 1\n`);
  expect((await f.run('apply', [], env)).code).toBe(EXIT.invalidDesiredState);
  expect((await f.run('apply', [], env)).code).toBe(EXIT.invalidDesiredState);
  const invalid = hooks.on('/chat').filter((r) => (r.body as { type: string }).type === 'desired-state-invalid');
  expect(invalid).toHaveLength(1);
  expect((invalid[0]?.body as { reason: string }).reason).toMatch(/stack\.yaml:\d+:\d+: \/services\/web\/bogus: unknown key "bogus"/);

  const s = await f.status();
  expect(s.notifications.find((n) => n.name === 'chat')).toMatchObject({ sent: 3, suppressed: 1, failed: 0 });
  expect(s.notifications.find((n) => n.name === 'broken')).toMatchObject({ failed: expect.any(Number), lastError: expect.stringContaining('500') });
  expect((await f.run('status', [], env)).stdout).toMatch(/broken: 0 sent, .* failed; LAST FAILURE/);

  const everything = JSON.stringify([hooks.received, ses.requests.map((r) => r.body)]);
  expect(everything).not.toContain(secret);
});
