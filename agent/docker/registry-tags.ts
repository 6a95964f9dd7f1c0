/**
 * What a tag names at its registry, asked with the pull credentials (the distribution API:
 * `HEAD /v2/<repository>/manifests/<tag>`, with a bearer token when the registry wants one).
 * `validate` and `plan` compare it with the digest pinned in Git: `nginx:1.27.3@<an older
 * build>` would otherwise show as 1.27.3 everywhere a person looks.
 */
import { parseImageRef } from '../core/image-ref.js';
import { errorMessage } from '../core/errors.js';
import { resolveRegistryAuth, type RegistryAuth } from './registry-auth.js';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export type TagLookup = { ok: true; digest: string; platforms: string[] } | { ok: false; error: string };

export interface TagLookupOptions {
  dockerConfigPath: string;
  timeoutMs?: number;
}

/** The digest the tag of `ref` names now, and for an index the digests of its platform manifests. */
export async function lookupTag(ref: string, o: TagLookupOptions): Promise<TagLookup> {
  const p = parseImageRef(ref);
  if (!p) return { ok: false, error: 'not an image reference' };
  const host = p.registry === 'docker.io' ? 'registry-1.docker.io' : p.registry;
  const scheme = /^(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?$/.test(host) ? 'http' : 'https';
  const url = `${scheme}://${host}/v2/${p.repository}/manifests/${p.tag ?? 'latest'}`;
  const { auth } = await resolveRegistryAuth(ref, o.dockerConfigPath);
  const signal = () => AbortSignal.timeout(o.timeoutMs ?? 10_000);
  try {
    let res = await fetch(url, { method: 'HEAD', headers: { Accept: ACCEPT }, signal: signal(), redirect: 'follow' });
    if (res.status === 401) {
      const authorization = await authorize(res.headers.get('www-authenticate') ?? '', auth, signal);
      if (!authorization) return { ok: false, error: `${host} asks for credentials the agent cannot use (HTTP 401)` };
      res = await fetch(url, { method: 'HEAD', headers: { Accept: ACCEPT, Authorization: authorization }, signal: signal(), redirect: 'follow' });
      if (res.ok && isIndex(res.headers.get('content-type'))) return withPlatforms(url, res, { Accept: ACCEPT, Authorization: authorization }, signal);
    } else if (res.ok && isIndex(res.headers.get('content-type'))) return withPlatforms(url, res, { Accept: ACCEPT }, signal);
    if (res.status === 404) return { ok: false, error: `the tag ${p.tag ?? 'latest'} does not exist at ${host}` };
    if (!res.ok) return { ok: false, error: `${host} answered HTTP ${res.status}` };
    const digest = res.headers.get('docker-content-digest');
    return digest ? { ok: true, digest, platforms: [] } : { ok: false, error: `${host} gave no Docker-Content-Digest` };
  } catch (err) {
    return { ok: false, error: `${host}: ${errorMessage(err)}` };
  }
}

function isIndex(type: string | null): boolean {
  return type !== null && /manifest\.list|image\.index/.test(type);
}

/** An index: its own digest and those of its manifests (a pin may name one platform's). */
async function withPlatforms(url: string, head: Response, headers: Record<string, string>, signal: () => AbortSignal): Promise<TagLookup> {
  const digest = head.headers.get('docker-content-digest');
  const res = await fetch(url, { headers, signal: signal(), redirect: 'follow' });
  if (!res.ok) return { ok: false, error: `reading the index answered HTTP ${res.status}` };
  const body = (await res.json()) as { manifests?: { digest?: unknown }[] };
  const platforms = (body.manifests ?? []).map((m) => m.digest).filter((d): d is string => typeof d === 'string');
  return digest ? { ok: true, digest, platforms } : { ok: false, error: 'the registry gave no Docker-Content-Digest' };
}

/** The `Authorization` header a 401's challenge asks for: a bearer token from its realm, or basic credentials. */
async function authorize(challenge: string, auth: RegistryAuth | undefined, signal: () => AbortSignal): Promise<string | undefined> {
  const basic = auth?.username !== undefined && auth.password !== undefined ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : undefined;
  if (/^basic/i.test(challenge)) return basic;
  if (!/^bearer/i.test(challenge)) return undefined;
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]));
  if (!params.realm) return undefined;
  const tokenUrl = new URL(params.realm);
  for (const k of ['service', 'scope']) if (params[k]) tokenUrl.searchParams.set(k, params[k]);
  const res = await fetch(tokenUrl, { headers: basic ? { Authorization: basic } : {}, signal: signal() });
  if (!res.ok) return undefined;
  const body = (await res.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  return token ? `Bearer ${token}` : undefined;
}
