/**
 * RFC 9449 DPoP proof verification. A proof is a JWT signed by the client's own key (the public key
 * embedded in its header) that names the HTTP method and URL of this one request. Tokens minted for a
 * DPoP client carry `cnf.jkt`, the thumbprint of that key, so a stolen token is useless without it.
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, type JWK, jwtVerify } from 'jose';
import { type Refusal, refuse } from '../core/errors.js';

/**
 * Remembers proof ids until they expire. `remember` is check-and-set: false when the key was already
 * there and not yet expired (a replay). Implementations must be atomic for one process; a shared one
 * (Redis SET NX PX) may return a promise.
 */
export interface ReplayCache {
  remember(key: string, expiresAt: number, now: number): boolean | Promise<boolean>;
}

/**
 * In-memory replay cache, bounded. Entries are kept in insertion order, which is also expiry order
 * (every proof gets the same window), so pruning only ever looks at the front. When full of live
 * entries the oldest is evicted: memory stays bounded, and an evicted proof is at most `window` old.
 */
export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly maxEntries = 100_000) {}

  remember(key: string, expiresAt: number, now: number): boolean {
    for (const [k, exp] of this.seen) {
      if (exp > now) break;
      this.seen.delete(k);
    }
    const exp = this.seen.get(key);
    if (exp !== undefined && exp > now) return false;
    if (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.delete(key);
    this.seen.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

/**
 * The process's replay cache, used when a caller passes none (and passed explicitly by the gateway).
 * In memory until {@link useSharedReplayCache} points it at a cache every instance shares (Redis
 * `SET NX PX`, or the control store), so a proof accepted by one instance is refused by all.
 */
class DefaultReplayCache implements ReplayCache {
  readonly memory = new MemoryReplayCache();
  shared: ReplayCache | null = null;
  remember(key: string, expiresAt: number, now: number): boolean | Promise<boolean> {
    return (this.shared ?? this.memory).remember(key, expiresAt, now);
  }
}

export const defaultReplayCache = new DefaultReplayCache();

/** Sets (or, with null, clears) the shared cache behind {@link defaultReplayCache}. */
export function useSharedReplayCache(cache: ReplayCache | null): void {
  defaultReplayCache.shared = cache;
}

export interface DpopCheck {
  /** The request's method, e.g. `POST`. */
  htm: string;
  /** The request's full URL as the client addressed it (scheme, host, path); query and fragment are ignored. */
  htu: string;
  /** The access token presented with the proof; when given, the proof's `ath` must be its hash. */
  accessToken?: string | null;
  /** The token's `cnf.jkt`; when given, the proof key's thumbprint must equal it. */
  jkt?: string | null;
  /** ms since the epoch. */
  now: number;
  replay?: ReplayCache;
  /** How old a proof may be; default 60 s. */
  maxAgeMs?: number;
  /** How far in the future `iat` may be (clock skew); default 5 s. */
  maxFutureMs?: number;
}

/** Asymmetric algorithms only: `none` and HMAC can never prove possession of a key pair. */
const ALGORITHMS = [
  'EdDSA',
  'Ed25519',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
];

/** `htu` comparison form: scheme and host lower-cased, default port dropped, no query or fragment. */
export function normalizeHtu(url: string): string | null {
  try {
    const u = new URL(url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return null;
  }
}

/** `ath`: base64url(SHA-256(access token)). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/** RFC 7638 SHA-256 thumbprint of a public JWK (the value of `cnf.jkt`). */
export function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}

/**
 * Verifies a proof and returns the thumbprint of its key (to bind a new token at the token endpoint),
 * or a SLUICE_DPOP_INVALID refusal whose `internal` says which check failed (SLUICE_STORE_UNAVAILABLE
 * when a shared replay cache cannot answer). Never throws. The proof's
 * `jti` is recorded only when every other check passed, so garbage cannot fill the replay cache.
 */
export async function checkDpop(
  proof: string | null | undefined,
  c: DpopCheck,
): Promise<{ jkt: string } | Refusal> {
  const bad = (why: string) => refuse('SLUICE_DPOP_INVALID', undefined, { internal: why });
  if (!proof) return bad('no DPoP proof');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    return bad('proof is not a JWS');
  }
  if (header.typ !== 'dpop+jwt') return bad('typ is not dpop+jwt');
  if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg))
    return bad(`alg ${String(header.alg)} not allowed`);
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== 'object') return bad('no jwk in header');
  if ('d' in jwk || 'k' in jwk || 'p' in jwk) return bad('jwk is not a public key');
  let payload: Record<string, unknown>;
  try {
    // EmbeddedJWK verifies the signature with the key in the header.
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ALGORITHMS,
      currentDate: new Date(c.now),
    }));
  } catch (e) {
    return bad(`signature: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (payload.htm !== c.htm) return bad(`htm ${String(payload.htm)} != ${c.htm}`);
  const want = normalizeHtu(c.htu);
  const got = typeof payload.htu === 'string' ? normalizeHtu(payload.htu) : null;
  if (want === null || got === null || got !== want) return bad(`htu ${String(payload.htu)} != ${c.htu}`);
  const iat = payload.iat;
  if (typeof iat !== 'number') return bad('no iat');
  const maxAge = c.maxAgeMs ?? 60_000;
  const maxFuture = c.maxFutureMs ?? 5_000;
  if (iat * 1000 < c.now - maxAge) return bad('proof too old');
  if (iat * 1000 > c.now + maxFuture) return bad('proof iat in the future');
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return bad('no jti');
  if (c.accessToken != null) {
    if (payload.ath !== accessTokenHash(c.accessToken)) return bad('ath does not match the access token');
  }
  let jkt: string;
  try {
    jkt = await jwkThumbprint(jwk);
  } catch {
    return bad('jwk thumbprint');
  }
  if (c.jkt != null && jkt !== c.jkt) return bad('proof key is not the key the token is bound to');
  const replay = c.replay ?? defaultReplayCache;
  let fresh: boolean;
  try {
    fresh = await replay.remember(`${jkt}:${jti}`, iat * 1000 + maxAge + maxFuture, c.now);
  } catch (e) {
    // A shared cache that cannot answer: refuse (a replay must never pass), as a store outage, not a bad proof.
    return refuse('SLUICE_STORE_UNAVAILABLE', undefined, {
      internal: `DPoP replay cache: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  if (!fresh) return bad('replayed jti');
  return { jkt };
}

/** RFC 9449 check of a proof for a request carrying a DPoP-bound token: null when valid, else the refusal. */
export async function verifyDpop(proof: string | null | undefined, c: DpopCheck): Promise<Refusal | null> {
  const r = await checkDpop(proof, c);
  return 'code' in r ? r : null;
}
