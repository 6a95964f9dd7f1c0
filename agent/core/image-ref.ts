/**
 * Image references as the distribution spec defines them: `[domain/]path[:tag][@digest]`.
 * Parsing is strict so that a malformed reference is a validation error, never a pull of
 * something unexpected (a bare `nginx` silently meaning Docker Hub's latest, say).
 */
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}';
const REFERENCE = new RegExp(
  `^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`,
);

export interface ParsedImageRef {
  /** Registry host as written, or `docker.io` when none is given. */
  registry: string;
  /** Repository path inside the registry (`library/nginx` for official Docker Hub images). */
  repository: string;
  tag?: string;
  digest?: string;
  /** `registry/repository`, the name the engine and Renovate know the image by. */
  name: string;
}

export function parseImageRef(ref: string): ParsedImageRef | undefined {
  const m = REFERENCE.exec(ref);
  if (!m) return undefined;
  let domain = m[1];
  let path = m[2] as string;
  // The first component is a registry only when it looks like a host (Docker's own rule).
  if (domain !== undefined && !/[.:]/.test(domain) && domain !== 'localhost' && domain.toLowerCase() === domain) {
    path = `${domain}/${path}`;
    domain = undefined;
  }
  if (path.length + (domain?.length ?? 0) > 255) return undefined;
  if (m[4] !== undefined && m[4].startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(m[4])) return undefined;
  const registry = domain ?? 'docker.io';
  const repository = domain === undefined && !path.includes('/') ? `library/${path}` : path;
  const parsed: ParsedImageRef = { registry, repository, name: `${registry}/${repository}` };
  if (m[3] !== undefined) parsed.tag = m[3];
  if (m[4] !== undefined) parsed.digest = m[4];
  return parsed;
}

/** Short form for people: the tag, or a shortened digest when only the digest differs. */
export function describeImageChange(from: string, to: string): string {
  const a = parseImageRef(from);
  const b = parseImageRef(to);
  if (!a || !b || a.name !== b.name) return `image ${from} -> ${to}`;
  if (a.tag !== b.tag) return `image ${a.tag ?? 'latest'} -> ${b.tag ?? 'latest'}`;
  return `image digest ${shortDigest(a.digest)} -> ${shortDigest(b.digest)}`;
}

export function shortDigest(digest: string | undefined): string {
  if (!digest) return 'none';
  const [alg, hex] = digest.split(':');
  return `${alg}:${(hex ?? '').slice(0, 12)}`;
}

/** What to show for an image in tables: repository tail and tag, no digest. */
export function displayImage(ref: string): string {
  const p = parseImageRef(ref);
  if (!p) return ref;
  const tail = p.repository.split('/').pop() ?? p.repository;
  return `${tail}:${p.tag ?? (p.digest ? shortDigest(p.digest) : 'latest')}`;
}

/**
 * The reference to pull and look up: by digest when pinned (the tag is then only a label for
 * people, and the digest wins), else by tag (`latest` when none).
 */
export function pullReference(ref: string): string {
  const at = ref.indexOf('@');
  const name = stripTag(at >= 0 ? ref.slice(0, at) : ref);
  if (at >= 0) return `${name}${ref.slice(at)}`;
  const tag = parseImageRef(ref)?.tag;
  return `${name}:${tag ?? 'latest'}`;
}

function stripTag(nameAndTag: string): string {
  const slash = nameAndTag.lastIndexOf('/');
  const colon = nameAndTag.lastIndexOf(':');
  return colon > slash ? nameAndTag.slice(0, colon) : nameAndTag;
}
