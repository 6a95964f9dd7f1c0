import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createReplayGuard, deliveryId, pushedBranch, verifyWebhookSignature } from '../../agent/http/webhook.js';
import { requestPath } from '../../agent/http/server.js';
import { redactText, redactUrl, resolveGitCredentials } from '../../agent/source/git/credentials.js';

const body = Buffer.from('{"ref":"refs/heads/main"}');
const secret = 's3cret-value';
const hex = createHmac('sha256', secret).update(body).digest('hex');

describe('verifyWebhookSignature', () => {
  it.each([
    [{ 'x-gitea-signature': hex }, true],
    [{ 'x-forgejo-signature': hex }, true],
    [{ 'x-hub-signature-256': `sha256=${hex}` }, true],
    [{ 'x-gitea-signature': hex.toUpperCase() }, true],
    [{ 'x-gitea-signature': hex.replace(/^./, hex[0] === '0' ? '1' : '0') }, false],
    [{ 'x-hub-signature-256': 'sha256=zz' }, false],
    [{}, false],
  ])('%j -> %s', (headers, ok) => {
    expect(verifyWebhookSignature(headers, body, secret).ok).toBe(ok);
  });

  it('tells a missing signature from a bad one', () => {
    expect(verifyWebhookSignature({}, body, secret)).toEqual({ ok: false, reason: 'missing-signature' });
    expect(verifyWebhookSignature({ 'x-gitea-signature': '0'.repeat(64) }, body, secret)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('reads the pushed branch', () => {
    expect(pushedBranch(body)).toBe('main');
    expect(pushedBranch(Buffer.from('{"ref":"refs/tags/v1"}'))).toBeUndefined();
    expect(pushedBranch(Buffer.from('nope'))).toBeUndefined();
  });
});

describe('credentials never shown', () => {
  it('takes credentials out of the URL', async () => {
    const r = await resolveGitCredentials('https://bot:t0k3n-abc@git.example/ops/host.git', undefined);
    expect(r.url).toBe('https://git.example/ops/host.git');
    expect(r.credentials).toEqual({ username: 'bot', password: 't0k3n-abc' });
  });

  it('reads a token from an environment variable, with a default user name', async () => {
    const r = await resolveGitCredentials('https://git.example/x.git', { passwordEnv: 'TOKEN_VAR' }, { TOKEN_VAR: 'abc123' });
    expect(r.credentials).toEqual({ username: 'gitops-agent', password: 'abc123' });
    await expect(resolveGitCredentials('https://git.example/x.git', { passwordEnv: 'MISSING' }, {})).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('redacts URLs and secret values from texts', () => {
    expect(redactUrl('https://bot:pw@git.example/x.git')).toBe('https://***@git.example/x.git');
    expect(redactText('fetch https://bot:pw@h/x failed; password=hunter22 in output', ['hunter22'])).toBe('fetch https://***@h/x failed; password=[redacted] in output');
  });
});

describe('replay protection and request paths', () => {
  it('accepts a delivery id once within 24 h, again after, and forgets the oldest beyond its size', () => {
    let now = 0;
    const guard = createReplayGuard(() => now, 3);
    expect(guard.accept('a')).toBe(true);
    expect(guard.accept('a')).toBe(false);
    now += 24 * 3600_000;
    expect(guard.accept('a')).toBe(true);
    for (const id of ['b', 'c', 'd']) expect(guard.accept(id)).toBe(true);
    // 'a' was the oldest of four: dropped, so it is new again
    expect(guard.accept('a')).toBe(true);
    expect(guard.accept('d')).toBe(false);
  });

  it('reads the delivery id of each forge', () => {
    expect(deliveryId({ 'x-github-delivery': ' 72d3162e ' })).toBe('72d3162e');
    expect(deliveryId({ 'x-gitea-delivery': 'f6266f16' })).toBe('f6266f16');
    expect(deliveryId({})).toBeUndefined();
  });

  it.each([
    ['/hooks/git', '/hooks/git'],
    ['/hooks/git?x=1', '/hooks/git'],
    ['//', undefined],
    ['//evil/x', undefined],
    ['http://[::1', undefined],
    ['*', undefined],
    ['', undefined],
  ])('the path of %j is %j', (target, path) => {
    expect(requestPath(target)).toBe(path);
  });
});
