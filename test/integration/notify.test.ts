/**
 * Notification channels against real local endpoints: the AWS SDK against a fake SESv2
 * endpoint, nodemailer against an SMTP server with STARTTLS and AUTH, fetch against an HTTP
 * receiver. Only 127.0.0.1.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Channel } from '../../agent/notify/channel.js';
import { createSesChannel } from '../../agent/notify/channels/ses.js';
import { createSmtpChannel, type SmtpChannelConfig } from '../../agent/notify/channels/smtp.js';
import { createWebhookChannel } from '../../agent/notify/channels/webhook.js';
import { buildChannels } from '../../agent/notify/config.js';
import { EVENT_TYPES, type AgentEvent } from '../../agent/notify/events.js';
import { createNotifier, type Notifier, type NotifierRoute } from '../../agent/notify/notifier.js';
import { redactText } from '../../agent/source/git/credentials.js';
import { startSesServer, type SesTestServer } from '../harness/ses-server.js';
import { startSmtpSink, type SmtpSink } from '../harness/smtp-sink.js';
import { selfSignedCert } from '../harness/tls-cert.js';
import { startWebhookReceiver, type WebhookReceiver } from '../harness/webhook-receiver.js';

const AWS_SECRET = 'fake-aws-secret-key-0123456789';
const SMTP_PASSWORD = 'correct-horse-battery';
const HOOK_TOKEN = 'hook-bearer-t0ken-987';
const APP_SECRET = 'app-db-pa55word';
const secrets = [AWS_SECRET, SMTP_PASSWORD, HOOK_TOKEN, APP_SECRET];

const failed: AgentEvent = {
  type: 'update-failed',
  severity: 'critical',
  host: 'web-01',
  stack: 'reference',
  service: 'nginx',
  from: 'nginx:1.22.6',
  to: 'nginx:1.23.0',
  title: 'nginx update 1.22.6 -> 1.23.0 failed and was rolled back',
  reason: `probe http://127.0.0.1:8080/ answered 502; log: DB_PASSWORD=${APP_SECRET}`,
  action: 'Fix the image in Git or revert the change; `agent status` shows the held version.',
  at: new Date().toISOString(),
  dedupKey: 'update-failed:reference:nginx:1.23.0',
  details: { transaction: 'tx-7', commit: '0a1b2c3' },
};

let ses: SesTestServer;
let smtp: SmtpSink;
let hooks: WebhookReceiver;
let dir: string;
const logLines: string[] = [];
const toClose: Channel[] = [];

function makeNotifier(channels: NotifierRoute[], timeoutMs = 5000): Notifier {
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    }),
  );
  toClose.push(...channels.map((c) => c.channel));
  return createNotifier({ channels, clock: { now: () => Date.now() }, log, redact: (t) => redactText(t, secrets), timeoutMs });
}

const all = (channel: Channel): NotifierRoute => ({ channel, events: EVENT_TYPES });

beforeAll(async () => {
  const cert = await selfSignedCert();
  [ses, smtp, hooks] = await Promise.all([startSesServer(), startSmtpSink({ ...cert, users: { agent: SMTP_PASSWORD } }), startWebhookReceiver()]);
  dir = await mkdtemp(join(tmpdir(), 'notify-it-'));
});

afterAll(async () => {
  await Promise.allSettled(toClose.map((c) => c.close?.()));
  await Promise.allSettled([ses?.close(), smtp?.close(), hooks?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
  // nothing secret in any log line of the whole file
  const logs = logLines.join('');
  for (const s of secrets) expect(logs).not.toContain(s);
});

describe('SES (SESv2 SDK against a local endpoint)', () => {
  const channel = () =>
    createSesChannel('ses', { region: 'eu-west-1', from: 'agent@example.org', to: ['ops@example.org', 'oncall@example.org'], endpoint: ses.endpoint }, {
      clientConfig: { credentials: { accessKeyId: 'AKIDNOTIFYTEST', secretAccessKey: AWS_SECRET } },
    });

  it('sends a signed SendEmail with from, to, subject and body', async () => {
    const notifier = makeNotifier([all(channel())]);
    notifier.notify(failed);
    await notifier.flush();
    expect(notifier.status()[0]).toMatchObject({ name: 'ses', kind: 'ses', sent: 1, failed: 0 });
    const req = ses.requests.at(-1);
    expect(req).toMatchObject({ method: 'POST', path: '/v2/email/outbound-emails' });
    expect(String(req?.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDNOTIFYTEST\/\d{8}\/eu-west-1\/ses\/aws4_request, SignedHeaders=.+, Signature=[0-9a-f]{64}$/);
    const body = req?.body as { FromEmailAddress: string; Destination: { ToAddresses: string[] }; Content: { Simple: { Subject: { Data: string }; Body: { Text: { Data: string } } } } };
    expect(body.FromEmailAddress).toBe('agent@example.org');
    expect(body.Destination.ToAddresses).toEqual(['ops@example.org', 'oncall@example.org']);
    expect(body.Content.Simple.Subject.Data).toBe('[gitops-agent] web-01/reference: nginx update 1.22.6 -> 1.23.0 failed and was rolled back');
    const text = body.Content.Simple.Body.Text.Data;
    expect(text).toMatch(/^Service: +nginx$/m);
    expect(text).toMatch(/^Version: +nginx:1\.22\.6 -> nginx:1\.23\.0$/m);
    expect(text).toContain('Why:\n  probe http://127.0.0.1:8080/ answered 502');
    expect(text).toContain('What to do next:\n  Fix the image in Git');
    expect(text).toContain('transaction: tx-7');
    expect(JSON.stringify(req)).not.toContain(APP_SECRET);
    expect(JSON.stringify(req)).not.toContain(AWS_SECRET);
  });

  it('records a MessageRejected answer as a failure of the channel', async () => {
    const notifier = makeNotifier([all(channel())]);
    ses.reject('MessageRejected');
    try {
      notifier.notify({ ...failed, dedupKey: 'rejected-case' });
      await notifier.flush();
    } finally {
      ses.reject(undefined);
    }
    const [st] = notifier.status();
    expect(st).toMatchObject({ sent: 0, failed: 1, lastErrorKind: 'rejected' });
    expect(st?.lastError).toContain('MessageRejected');
    expect(st?.lastErrorAt).toBeDefined();
  });
});

describe('SMTP (nodemailer, STARTTLS, AUTH)', () => {
  const config = (over: Partial<SmtpChannelConfig> = {}): SmtpChannelConfig => ({
    host: '127.0.0.1',
    port: smtp.port,
    starttls: true,
    username: 'agent',
    password: SMTP_PASSWORD,
    from: 'gitops-agent <agent@example.org>',
    to: ['ops@example.org'],
    rejectUnauthorized: false,
    ...over,
  });

  it('delivers over STARTTLS after AUTH, with the right content', async () => {
    const notifier = makeNotifier([all(createSmtpChannel('mail', config()))]);
    notifier.notify(failed);
    await notifier.flush();
    expect(notifier.status()[0]).toMatchObject({ kind: 'smtp', sent: 1, failed: 0 });
    const msg = smtp.messages.at(-1);
    expect(msg).toMatchObject({ mailFrom: 'agent@example.org', rcptTo: ['ops@example.org'], user: 'agent', secure: true });
    expect(msg?.subject).toBe('[gitops-agent] web-01/reference: nginx update 1.22.6 -> 1.23.0 failed and was rolled back');
    // nodemailer quotes a display name with a hyphen
    expect(msg?.headers.from).toBe('"gitops-agent" <agent@example.org>');
    expect(msg?.text).toMatch(/^Version: +nginx:1\.22\.6 -> nginx:1\.23\.0$/m);
    expect(msg?.text).toContain('What to do next:');
    expect(msg?.raw).not.toContain(APP_SECRET);
    expect(msg?.text).toContain('[redacted]');
  });

  it('a wrong password is a failure (EAUTH 535), the password shown nowhere', async () => {
    const before = smtp.messages.length;
    const notifier = makeNotifier([all(createSmtpChannel('mail', config({ password: `${SMTP_PASSWORD}-wrong` })))]);
    notifier.notify(failed);
    await notifier.flush();
    const [st] = notifier.status();
    expect(st).toMatchObject({ sent: 0, failed: 1, lastErrorKind: 'auth' });
    expect(st?.lastError).toMatch(/EAUTH 535/);
    expect(st?.lastError).not.toContain(SMTP_PASSWORD);
    expect(smtp.authFailures).toContain('agent');
    expect(smtp.messages.length).toBe(before);
  });

  it('checks the certificate by default: a self-signed relay is refused', async () => {
    const notifier = makeNotifier([all(createSmtpChannel('mail', config({ rejectUnauthorized: undefined })))]);
    notifier.notify(failed);
    await notifier.flush();
    expect(notifier.status()[0]).toMatchObject({ sent: 0, failed: 1 });
    expect(notifier.status()[0]?.lastError).toMatch(/certificate/i);
  });
});

describe('webhooks', () => {
  it('posts the event (json) and a Slack message (slack), with secret headers from a file', async () => {
    const headersFile = join(dir, 'hook-headers');
    await writeFile(headersFile, `Authorization: Bearer ${HOOK_TOKEN}\n`, { mode: 0o600 });
    const routes = await buildChannels(
      {
        channels: {
          audit: { webhook: { url: `${hooks.url}/json`, format: 'json', headersFile } },
          chat: { events: ['update-failed'], webhook: { urlEnv: 'CHAT_HOOK', format: 'slack' } },
        },
      },
      { CHAT_HOOK: `${hooks.url}/slack/T000/B000/secretpath` },
      (p) => readFile(p, 'utf8'),
    );
    const notifier = makeNotifier(routes);
    notifier.notify(failed);
    await notifier.flush();
    expect(notifier.status().map((s) => [s.name, s.sent, s.failed])).toEqual([
      ['audit', 1, 0],
      ['chat', 1, 0],
    ]);

    const [json] = hooks.on('/json');
    expect(json?.headers['content-type']).toBe('application/json');
    expect(json?.headers.authorization).toBe(`Bearer ${HOOK_TOKEN}`);
    expect(json?.body).toEqual({ ...failed, reason: 'probe http://127.0.0.1:8080/ answered 502; log: DB_PASSWORD=[redacted]' });

    const [slack] = hooks.on('/slack/T000/B000/secretpath');
    const body = slack?.body as { text: string; blocks: { type: string; text?: { text: string } }[] };
    expect(body.text).toMatch(/^\[gitops-agent\] web-01\/reference: nginx update 1\.22\.6 -> 1\.23\.0 failed and was rolled back\n/);
    expect(body.text).toContain('What to do next:');
    expect(body.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    expect(body.blocks[1]?.text?.text).toContain('nginx:1.22.6 -&gt; nginx:1.23.0');
    expect(JSON.stringify(body)).not.toContain(APP_SECRET);
  });

  it('a hanging endpoint times out and is recorded; the other channels are not delayed', async () => {
    const notifier = makeNotifier(
      [
        all(createWebhookChannel('hang', { url: `${hooks.url}/hang`, format: 'json' })),
        all(createWebhookChannel('broken', { url: `${hooks.url}/status/500`, format: 'json' })),
        all(createWebhookChannel('fine', { url: `${hooks.url}/fine`, format: 'slack' })),
        all(createSmtpChannel('mail', { host: '127.0.0.1', port: smtp.port, starttls: true, username: 'agent', password: SMTP_PASSWORD, from: 'agent@example.org', to: ['ops@example.org'], rejectUnauthorized: false })),
      ],
      3000,
    );
    const t0 = Date.now();
    notifier.notify({ ...failed, dedupKey: 'hang-case' });
    // the others are delivered long before the hanging one's deadline
    await expect.poll(() => notifier.status().filter((s) => s.sent === 1).length, { timeout: 2500, interval: 20 }).toBe(2);
    expect(Date.now() - t0).toBeLessThan(2800);
    await notifier.flush();
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(2900);
    expect(elapsed).toBeLessThan(8000);
    const byName = Object.fromEntries(notifier.status().map((s) => [s.name, s]));
    expect(byName.hang).toMatchObject({ sent: 0, failed: 1, lastErrorKind: 'timeout', pending: 0 });
    expect(byName.hang?.lastError).toMatch(/no answer within 3\.0s/);
    expect(byName.broken).toMatchObject({ sent: 0, failed: 1, lastErrorKind: 'http' });
    expect(byName.broken?.lastError).toBe(`webhook ${hooks.url} answered 500: fake failure 500`);
    expect(byName.fine).toMatchObject({ sent: 1, failed: 0 });
    expect(byName.mail).toMatchObject({ sent: 1, failed: 0 });
    expect(hooks.on('/hang')).toHaveLength(1);
  });
});
