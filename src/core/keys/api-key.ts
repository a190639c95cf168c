/**
 * API key format and hashing. A key is `sk-sluice-<keyId>-<secret>`: the key id is public (for
 * lookup and display), the secret is shown once and stored only as HMAC-SHA-256 with a server pepper.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_PREFIX = 'sk-sluice-';
/** 12 base62 chars of id (~71 bits): unique without coordination; 32 of secret (~190 bits). */
const ID_LEN = 12;
const SECRET_LEN = 32;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_RE = /^sk-sluice-([0-9A-Za-z]{12})-([0-9A-Za-z]{32})$/;

function base62(n: number): string {
  // Rejection sampling keeps every character uniformly likely.
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 248 && out.length < n) out += ALPHABET[b % 62];
    }
  }
  return out;
}

export function newKeyId(): string {
  return base62(ID_LEN);
}

export function newSecret(): string {
  return base62(SECRET_LEN);
}

export function formatKey(id: string, secret: string): string {
  return `${KEY_PREFIX}${id}-${secret}`;
}

/** Splits a presented key; undefined when it is not a Sluice key at all. */
export function parseKey(presented: string): { id: string; secret: string } | undefined {
  const m = KEY_RE.exec(presented);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export function hashSecret(pepper: Buffer, secret: string): string {
  return createHmac('sha256', pepper).update(secret).digest('hex');
}

/** Constant-time comparison of two hex digests of equal length. */
export function hashesEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}
