import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The signature headers forges send: Gitea `X-Gitea-Signature` and Forgejo
 * `X-Forgejo-Signature` (hex HMAC-SHA256 of the body), GitHub `X-Hub-Signature-256`
 * (`sha256=<hex>`). Gogs sends `X-Gogs-Signature` like Gitea.
 */
const HEADERS = ['x-hub-signature-256', 'x-gitea-signature', 'x-forgejo-signature', 'x-gogs-signature'] as const;

export type WebhookVerdict = { ok: true; header: string } | { ok: false; reason: 'missing-signature' | 'bad-signature' };

/** Checks the body's HMAC-SHA256 against every signature header present, in constant time. */
export function verifyWebhookSignature(headers: IncomingHttpHeaders, body: Buffer, secret: string): WebhookVerdict {
  const expected = createHmac('sha256', secret).update(body).digest();
  let seen = false;
  for (const name of HEADERS) {
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (!value) continue;
    seen = true;
    const hex = value.replace(/^sha256=/i, '').trim();
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) continue;
    if (timingSafeEqual(Buffer.from(hex, 'hex'), expected)) return { ok: true, header: name };
  }
  return { ok: false, reason: seen ? 'bad-signature' : 'missing-signature' };
}

/** What a push event says, when it says it: the branch, to ignore pushes to other branches. */
export function pushedBranch(body: Buffer): string | undefined {
  try {
    const ref = (JSON.parse(body.toString('utf8')) as { ref?: unknown }).ref;
    return typeof ref === 'string' && ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : undefined;
  } catch {
    return undefined;
  }
}

/** The delivery id forges send with each webhook call (a redelivery resends the same). */
const DELIVERY_HEADERS = ['x-github-delivery', 'x-gitea-delivery', 'x-forgejo-delivery', 'x-gogs-delivery'] as const;

export function deliveryId(headers: IncomingHttpHeaders): string | undefined {
  for (const name of DELIVERY_HEADERS) {
    const raw = headers[name];
    const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (value) return value.slice(0, 200);
  }
  return undefined;
}

/**
 * Replay protection: the delivery ids of accepted calls, kept 24 h (at most `max`, the oldest
 * dropped first). A signed call replayed by whoever captured it is refused as seen.
 */
export function createReplayGuard(now: () => number, max = 10_000, ttlMs = 24 * 3600_000) {
  const seen = new Map<string, number>();
  return {
    /** True the first time an id is offered within the TTL; false for a replay. */
    accept(id: string): boolean {
      const t = now();
      for (const [k, at] of seen) {
        if (t - at < ttlMs && seen.size < max) break;
        seen.delete(k);
      }
      const at = seen.get(id);
      if (at !== undefined && t - at < ttlMs) return false;
      seen.delete(id);
      seen.set(id, t);
      return true;
    },
  };
}
