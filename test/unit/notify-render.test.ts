import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../agent/notify/events.js';
import { redactEvent, renderMessage, renderReminder, stripUrlUserInfo } from '../../agent/notify/render.js';
import { slackPayload } from '../../agent/notify/channels/webhook.js';
import { redactText } from '../../agent/source/git/credentials.js';

const SECRET = 'pg-Pa55word-xyz';
const redact = (t: string) => redactText(t, [SECRET]);

const failed: AgentEvent = {
  type: 'update-failed',
  severity: 'critical',
  host: 'web-01',
  stack: 'reference',
  service: 'nginx',
  from: 'nginx:1.22.6',
  to: 'nginx:1.23.0',
  title: 'nginx update 1.22.6 -> 1.23.0 failed and was rolled back',
  reason: `probe http://127.0.0.1:80/ answered 502 after 60s\ncontainer log: connecting with password ${SECRET} to https://admin:hunter22@db.internal/x`,
  at: '2024-05-01T10:00:00.000Z',
  dedupKey: 'update-failed:reference:nginx:nginx:1.23.0',
  details: { transaction: 'tx-42', commit: 'abc1234', 'DATABASE_URL': `postgres://app:${SECRET}@db/app` },
};

describe('renderMessage', () => {
  const m = renderMessage(failed, redact);

  it('has the documented subject', () => {
    expect(m.subject).toBe('[gitops-agent] web-01/reference: nginx update 1.22.6 -> 1.23.0 failed and was rolled back');
  });

  it('says what happened, to which service, from which version to which, why, and what to do next', () => {
    expect(m.text).toMatch(/^nginx update 1\.22\.6 -> 1\.23\.0 failed and was rolled back$/m);
    expect(m.text).toMatch(/^What: +Update failed \(critical\)$/m);
    expect(m.text).toMatch(/^Service: +nginx$/m);
    expect(m.text).toMatch(/^Version: +nginx:1\.22\.6 -> nginx:1\.23\.0$/m);
    expect(m.text).toMatch(/^When: +2024-05-01 10:00:00 UTC$/m);
    expect(m.text).toMatch(/Why:\n {2}probe http:\/\/127\.0\.0\.1:80\/ answered 502 after 60s\n {2}container log:/);
    // no action given: the default for the type
    expect(m.text).toMatch(/What to do next:\n {2}The old version keeps running/);
    expect(m.text).toMatch(/Details:\n {2}transaction: tx-42\n {2}commit: abc1234/);
  });

  it('uses the producer\'s action when there is one', () => {
    const t = renderMessage({ ...failed, action: 'Run `agent status` and fix nginx.conf in Git.' }, redact).text;
    expect(t).toContain('What to do next:\n  Run `agent status` and fix nginx.conf in Git.');
    expect(t).not.toContain('The old version keeps running');
  });

  it('never shows a secret or URL user info', () => {
    for (const text of [m.subject, m.text]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('hunter22');
      expect(text).not.toContain('admin:');
    }
    expect(m.text).toContain('[redacted]');
    expect(m.text).toContain('https://***@db.internal/x');
  });

  it('strips user info even without a redact function, and keeps subjects on one line', () => {
    const r = renderMessage({ ...failed, title: 'pull from https://bot:tok@reg.example/x\r\nBcc: evil@example.org' });
    expect(r.subject).toBe('[gitops-agent] web-01/reference: pull from https://***@reg.example/x Bcc: evil@example.org');
    expect(stripUrlUserInfo('git+ssh://u:p@h/r and http://x@y')).toBe('git+ssh://***@h/r and http://***@y');
  });

  it('a failing redact function withholds the text instead of leaking it', () => {
    const r = renderMessage(failed, () => {
      throw new Error('boom');
    });
    expect(r.text).not.toContain(SECRET);
    expect(r.text).toContain('withheld');
  });
});

describe('renderReminder', () => {
  it('says how many repeats since when', () => {
    const r = renderReminder(failed, { count: 5, since: '2024-05-01T10:00:00.000Z', firstAt: '2024-05-01T09:00:00.000Z' }, redact);
    expect(r.subject).toBe('[gitops-agent] web-01/reference: reminder (5 more): nginx update 1.22.6 -> 1.23.0 failed and was rolled back');
    expect(r.text).toMatch(/^Reminder: this happened again 5 times since 2024-05-01 10:00:00 UTC \(first reported 2024-05-01 09:00:00 UTC\)\./);
    expect(r.text).toContain('What to do next:');
    expect(r.text).not.toContain(SECRET);
  });
});

describe('redactEvent and the Slack payload', () => {
  it('redacts every text field of the event (the json webhook sends it as it is)', () => {
    const e = redactEvent(failed, redact);
    expect(JSON.stringify(e)).not.toContain(SECRET);
    expect(JSON.stringify(e)).not.toContain('hunter22');
    expect(e.service).toBe('nginx');
    expect(e.details?.transaction).toBe('tx-42');
  });

  it('builds text and blocks, escaping for Slack and defusing mentions', () => {
    const m = renderMessage({ ...failed, reason: 'log says <!channel> & <@U123> <b>' }, redact);
    const p = slackPayload(m, failed);
    expect(p.text.startsWith(m.subject)).toBe(true);
    expect(p.text).toContain('&lt;!channel>');
    expect(p.text).toContain('&lt;@U123>');
    const section = JSON.stringify(p.blocks[1]);
    expect(section).toContain('&lt;!channel&gt; &amp; &lt;@U123&gt; &lt;b&gt;');
    expect(section).toContain('1.22.6 -&gt; nginx:1.23.0');
    expect(p.blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text' } });
  });
});
