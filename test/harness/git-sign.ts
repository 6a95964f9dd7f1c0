/**
 * OpenPGP for signed-commit tests, with openpgp (v6, pure JS): no gpg-agent, no keyring,
 * nothing outside the test's memory.
 *
 * Keys are EdDSA on curve25519 in the "legacy" v4 form (`curve25519Legacy`): GnuPG 2.2 (the
 * `gpg` behind `git verify-commit` on Debian 12) reads those, while openpgp's `type:
 * 'curve25519'` makes RFC 9580 Ed25519 keys that GnuPG 2.2 does not know.
 */
import * as openpgp from 'openpgp';
import type { SignCallback } from 'isomorphic-git';

export interface TestKey {
  /** Armored private key, not protected by a passphrase. */
  privateKey: string;
  publicKey: string;
  /** 40 hex digits, upper case as GnuPG prints them. */
  fingerprint: string;
}

export async function generateTestKey(name: string, email: string): Promise<TestKey> {
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name, email }],
    format: 'armored',
  });
  const key = await openpgp.readKey({ armoredKey: publicKey });
  return { privateKey, publicKey, fingerprint: key.getFingerprint().toUpperCase() };
}

/**
 * isomorphic-git's `onSign`: a detached, armored, binary-mode signature over the commit
 * payload, which is what `git commit -S` (gpg --detach-sign --armor) makes.
 */
export const signCommitPayload: SignCallback = async ({ payload, secretKey }) => {
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: secretKey });
  const signature = await openpgp.sign({
    message: await openpgp.createMessage({ binary: Buffer.from(payload, 'utf8') }),
    signingKeys,
    detached: true,
    format: 'armored',
  });
  return { signature };
};

/**
 * Whether `signature` (a commit's `gpgsig`) is a valid signature of `payload` (from
 * isomorphic-git's readCommit) by one of `publicKeys`. False for a bad signature, another
 * key or garbage; never throws.
 */
export async function verifyCommitSignature(payload: string, signature: string, publicKeys: string | string[]): Promise<boolean> {
  try {
    const verificationKeys = await Promise.all(
      (Array.isArray(publicKeys) ? publicKeys : [publicKeys]).map((armoredKey) => openpgp.readKey({ armoredKey })),
    );
    const result = await openpgp.verify({
      message: await openpgp.createMessage({ binary: Buffer.from(payload, 'utf8') }),
      signature: await openpgp.readSignature({ armoredSignature: signature }),
      verificationKeys,
      expectSigned: true,
    });
    // with expectSigned, verify() itself rejects unless a signature checks out
    const first = result.signatures[0];
    return first !== undefined && (await first.verified) === true;
  } catch {
    return false;
  }
}
