import { readFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { AgentError, errorMessage } from '../../core/errors.js';
import type { CommitSigner } from '../../ports/git.js';

export type SignatureVerdict = { ok: true; fingerprint: string } | { ok: false; reason: string };

/** The trusted OpenPGP keys, loaded from armored files (a file may hold several keys). */
export async function loadTrustedKeys(files: string[]): Promise<openpgp.PublicKey[]> {
  const keys: openpgp.PublicKey[] = [];
  for (const file of files) {
    try {
      // A file may hold several armored blocks one after the other (`cat a.asc b.asc`): read each.
      const text = await readFile(file, 'utf8');
      const blocks = text.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g) ?? [text];
      for (const block of blocks) keys.push(...(await openpgp.readKeys({ armoredKeys: block })));
    } catch (err) {
      throw new AgentError('CONFIG_INVALID', `cannot read trusted OpenPGP keys from ${file}: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (keys.length === 0) throw new AgentError('CONFIG_INVALID', 'commit verification is on but no trusted keys were given');
  return keys;
}

/** Checks a commit's detached signature against the trusted keys. Unsigned or unknown signer: refused. */
export async function verifyCommitSignature(payload: string, signature: string | undefined, trusted: openpgp.PublicKey[]): Promise<SignatureVerdict> {
  if (!signature) return { ok: false, reason: 'commit is not signed' };
  let sig: openpgp.Signature;
  try {
    sig = await openpgp.readSignature({ armoredSignature: signature });
  } catch (err) {
    return { ok: false, reason: `signature is not OpenPGP (${errorMessage(err)})` };
  }
  const result = await openpgp.verify({ message: await openpgp.createMessage({ binary: new TextEncoder().encode(payload) }), signature: sig, verificationKeys: trusted, format: 'binary' });
  const signer = result.signatures[0];
  if (!signer) return { ok: false, reason: 'signature carries no signer' };
  try {
    await signer.verified;
  } catch (err) {
    const keyId = signer.keyID.toHex();
    const known = trusted.some((k) => k.getKeys(signer.keyID).length > 0);
    return { ok: false, reason: known ? `signature by key ${keyId} does not verify: ${errorMessage(err)}` : `signed by key ${keyId}, which is not trusted` };
  }
  const key = trusted.find((k) => k.getKeys(signer.keyID).length > 0);
  return { ok: true, fingerprint: key?.getFingerprint() ?? signer.keyID.toHex() };
}

/** A signer for the agent's own commits (revert commits), from an armored private key. */
export async function loadCommitSigner(keyFile: string, passphraseFile?: string): Promise<CommitSigner> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: await readFile(keyFile, 'utf8') });
    if (!key.isDecrypted()) {
      if (!passphraseFile) throw new AgentError('CONFIG_INVALID', `${keyFile}: the key is protected by a passphrase; set git.signing.passphraseFile`, { data: { keyFile } });
      key = await openpgp.decryptKey({ privateKey: key, passphrase: (await readFile(passphraseFile, 'utf8')).replace(/\r?\n$/, '') });
    }
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `cannot load the commit signing key ${keyFile}: ${errorMessage(err)}`, { cause: err });
  }
  return async (payload) => {
    const message = await openpgp.createMessage({ binary: new TextEncoder().encode(payload) });
    return (await openpgp.sign({ message, signingKeys: key, detached: true, format: 'armored' })) as string;
  };
}
