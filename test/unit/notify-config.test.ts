import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { buildChannels, NOTIFICATIONS_SCHEMA, notificationSettings, parseHeaderLines, type NotificationsConfig } from '../../agent/notify/config.js';
import { EVENT_TYPES } from '../../agent/notify/events.js';

// the same Ajv settings as agent/config/config.ts, with the fragment where the agent schema will put it
const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile({
  type: 'object',
  additionalProperties: false,
  properties: { notifications: NOTIFICATIONS_SCHEMA },
});

const example = {
  reminderInterval: '1h',
  unreachableAfter: '10m',
  channels: {
    'ops-mail': { events: ['update-failed', 'backup-failed'], ses: { region: 'eu-west-1', from: 'agent@example.org', to: ['ops@example.org'] } },
    relay: {
      smtp: { host: 'smtp.example.org', port: 587, starttls: true, username: 'agent', passwordFile: '/run/secrets/smtp', from: 'gitops-agent <agent@example.org>', to: ['ops@example.org'] },
    },
    chat: { webhook: { urlEnv: 'SLACK_HOOK', format: 'slack' } },
    audit: { webhook: { url: 'https://audit.example.org/events', headersFile: '/run/secrets/audit-headers' } },
  },
};

const files: Record<string, string> = {
  '/run/secrets/smtp': 'smtp-pa55word\n',
  '/run/secrets/audit-headers': '# audit service\nAuthorization: Bearer audit-t0ken-123\nX-Tenant: ops\n',
  '/run/secrets/hook': 'https://hooks.slack.example/services/T000/B000/XXXXsecret\n',
};
const readFile = async (p: string) => {
  const v = files[p];
  if (v === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
  return v;
};

describe('NOTIFICATIONS_SCHEMA', () => {
  it('accepts the documented example', () => {
    expect(validate({ notifications: example }), JSON.stringify(validate.errors)).toBe(true);
  });

  it.each([
    ['two kinds in one channel', { channels: { x: { ses: example.channels['ops-mail'].ses, webhook: { url: 'https://h/x' } } } }],
    ['no kind', { channels: { x: { events: ['update-failed'] } } }],
    ['unknown event type', { channels: { x: { events: ['update-exploded'], webhook: { url: 'https://h/x' } } } }],
    ['both password sources', { channels: { x: { smtp: { ...example.channels.relay.smtp, passwordEnv: 'P' } } } }],
    ['password without username', { channels: { x: { smtp: { host: 'h', from: 'a@b', to: ['c@d'], passwordEnv: 'P' } } } }],
    ['url and urlFile', { channels: { x: { webhook: { url: 'https://h/x', urlFile: '/f' } } } }],
    ['bad duration', { reminderInterval: 'hourly', channels: {} }],
    ['bad channel name', { channels: { 'Bad Name': { webhook: { url: 'https://h/x' } } } }],
    ['bad address', { channels: { x: { ses: { region: 'eu-west-1', from: 'not-an-address', to: ['ops@example.org'] } } } }],
    ['password in the file', { channels: { x: { smtp: { ...example.channels.relay.smtp, password: 'inline' } } } }],
    ['no channels key', {}],
  ])('refuses %s', (_what, notifications) => {
    expect(validate({ notifications })).toBe(false);
  });
});

describe('notificationSettings', () => {
  it('has defaults and parses durations', () => {
    expect(notificationSettings(undefined)).toEqual({ reminderIntervalMs: 3_600_000, unreachableAfterMs: 600_000, timeoutMs: 10_000 });
    expect(notificationSettings({ reminderInterval: '30m', timeout: '5s', channels: {} })).toMatchObject({ reminderIntervalMs: 1_800_000, timeoutMs: 5000 });
    expect(() => notificationSettings({ reminderInterval: '10ms', channels: {} })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('buildChannels', () => {
  it('builds every kind, routes all events by default, and hands every secret to the caller', async () => {
    const secrets: string[] = [];
    const routes = await buildChannels(example as NotificationsConfig, { SLACK_HOOK: 'https://hooks.slack.example/services/T1/B1/envsecret' }, readFile, (s) => secrets.push(s));
    expect(routes.map((r) => [r.channel.name, r.channel.kind])).toEqual([
      ['ops-mail', 'ses'],
      ['relay', 'smtp'],
      ['chat', 'webhook'],
      ['audit', 'webhook'],
    ]);
    expect(routes[0]?.events).toEqual(['update-failed', 'backup-failed']);
    expect(routes[1]?.events).toEqual([...EVENT_TYPES]);
    expect(secrets).toEqual(expect.arrayContaining(['smtp-pa55word', 'https://hooks.slack.example/services/T1/B1/envsecret', 'Bearer audit-t0ken-123']));
    expect(secrets).not.toContain('smtp-pa55word\n');
  });

  it('reads a hook URL from a file', async () => {
    const secrets: string[] = [];
    const routes = await buildChannels({ channels: { chat: { webhook: { urlFile: '/run/secrets/hook', format: 'slack' } } } }, {}, readFile, (s) => secrets.push(s));
    expect(routes[0]?.channel.kind).toBe('webhook');
    expect(secrets).toEqual(['https://hooks.slack.example/services/T000/B000/XXXXsecret']);
  });

  it('fails with CONFIG_INVALID, naming the file or variable but never a value', async () => {
    const relay = example.channels.relay.smtp;
    await expect(buildChannels({ channels: { r: { smtp: { ...relay, passwordFile: '/missing' } } } }, {}, readFile)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('/missing'),
    });
    const { passwordFile: _f, ...noFile } = relay;
    await expect(buildChannels({ channels: { r: { smtp: { ...noFile, passwordEnv: 'SMTP_PW' } } } }, {}, readFile)).rejects.toThrow(/SMTP_PW/);
    await expect(buildChannels({ channels: { r: { smtp: noFile } } }, {}, readFile)).rejects.toThrow(/username without passwordFile/);
    await expect(buildChannels({ channels: { r: {} } }, {}, readFile)).rejects.toThrow(/exactly one of ses, smtp, webhook/);
    await expect(buildChannels({ channels: { r: { webhook: { url: 'ftp://h/x' } } } }, {}, readFile)).rejects.toThrow(/http or https/);
  });

  it('parses header files without quoting a bad line', () => {
    expect(parseHeaderLines('A: 1\n\n# c\nB-C:two words\n', 'f')).toEqual({ A: '1', 'B-C': 'two words' });
    expect(() => parseHeaderLines('Bearer t0ken-secret', 'f')).toThrow(/^f:1: not a "Name: value" header line$/);
  });
});
