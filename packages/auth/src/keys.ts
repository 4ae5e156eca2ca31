import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * An API key is `sy_<id>_<secret>`: `sy_<id>` (16 hex characters, 64 random bits) is the key id, visible and not
 * secret, so logs, errors and the audit trail can name the key; the secret is 43 base64url characters (256 random
 * bits). Services keep only a SHA-256 of the whole key: with 256 bits of randomness a fast hash is as good as a slow
 * one (nothing to guess), and it keeps the check at a microsecond.
 */
export const KEY_PATTERN = /^(sy_[0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const MAX_KEY_LENGTH = 3 + 16 + 1 + 43;

export interface ParsedKey {
  readonly keyId: string;
  /** The whole key, as presented. */
  readonly key: string;
}

export interface MintedKey extends ParsedKey {
  readonly hash: string;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new key: shown once to whoever asked for it, then only its hash is kept. */
export function mintKey(): MintedKey {
  const keyId = `sy_${randomBytes(8).toString('hex')}`;
  const key = `${keyId}_${randomBytes(32).toString('base64url')}`;
  return { keyId, key, hash: hashKey(key) };
}

/** The key's parts when the text has the shape of a key; undefined otherwise. */
export function parseKey(text: string): ParsedKey | undefined {
  if (text.length !== MAX_KEY_LENGTH) return undefined;
  const match = KEY_PATTERN.exec(text);
  return match === null ? undefined : { keyId: match[1]!, key: text };
}

/** Whether the key hashes to the stored hash, compared in constant time. */
export function keyMatches(key: string, storedHash: string): boolean {
  const presented = createHash('sha256').update(key, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
