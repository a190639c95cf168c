/**
 * Short-lived access tokens (RFC 9068-style JWTs, `typ: at+jwt`) minted in exchange for an API key.
 *
 * Signing keys (EdDSA/Ed25519 by default, or ES256) live in `<dataDir>/jwt-keys.json` (mode 0600).
 * The newest key signs; a key is rotated after `rotateEveryMs`, and retired keys stay in the JWKS and
 * keep verifying until every token they could have signed has expired (`retiredAt + maxTtl`), then
 * they are dropped. Time always comes from the Clock.
 *
 * Scopes in a token can only narrow: the gateway passes them as `Principal.tokenScopes`, and the access
 * policy intersects them with every other layer, so a token never grants more than its key has now.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { SluiceConfig } from '../config/schema.js';
import { type Refusal, refuse } from '../core/errors.js';
import { type Clock, systemClock } from '../core/ports.js';

export type TokenAlg = 'EdDSA' | 'ES256';

export interface TokenServiceOptions {
  dataDir: string;
  alg?: TokenAlg;
  issuer?: string;
  /** Audience when a mint names none, and the audience `verify` expects when the caller names none. */
  audience?: string;
  /** Default and maximum lifetime of a token; default 15 minutes. */
  ttlMs?: number;
  /** Age after which the signing key is replaced; default 7 days. */
  rotateEveryMs?: number;
  /** Tolerance for `iat`/`exp` between instances; default 5 s. */
  clockSkewMs?: number;
  clock?: Clock;
}

export interface MintInput {
  keyId: string;
  tenantId: string;
  /** Narrowed scopes (space-separated `scope` claim); omitted = whatever the key has. */
  scopes?: readonly string[] | null;
  audience?: string | readonly string[];
  /** Requested lifetime; clamped to the service's maximum. */
  ttlMs?: number;
  /** Minted after a fresh second factor (RFC 9470 step-up): `amr: ["otp"]`, `auth_time`. */
  stepUp?: boolean;
  /** RFC 9449 binding: SHA-256 JWK thumbprint of the client's DPoP key (`cnf.jkt`). */
  jkt?: string | null;
}

export interface MintedToken {
  token: string;
  /** ms since the epoch. */
  expiresAt: number;
  kid: string;
  jti: string;
}

/** What a verified token says, ready to become a Principal's token fields. */
export interface TokenClaims {
  keyId: string;
  tenantId: string;
  /** Null when the token does not narrow scopes. */
  scopes: string[] | null;
  audience: string[];
  stepUp: boolean;
  /** `cnf.jkt` when the token is DPoP-bound. */
  jkt: string | null;
  issuedAt: number;
  expiresAt: number;
  jti: string;
  kid: string;
}

interface StoredKey {
  kid: string;
  alg: TokenAlg;
  createdAt: number;
  retiredAt: number | null;
  privateJwk: JWK;
  publicJwk: JWK;
}

interface KeyFile {
  version: 1;
  keys: StoredKey[];
}

interface LiveKey extends StoredKey {
  signKey: CryptoKey;
  verifyKey: CryptoKey;
}

const FILE = 'jwt-keys.json';

function isRefusal(x: unknown): x is Refusal {
  return typeof x === 'object' && x !== null && 'code' in x;
}

/** True when `verify` returned a refusal rather than claims. */
export function isTokenRefusal(x: TokenClaims | Refusal): x is Refusal {
  return isRefusal(x);
}

/**
 * Mints and verifies access tokens and publishes the JWKS. `verify` never throws: a bad, expired,
 * wrongly-audienced or unknown-key token is a SLUICE_INVALID_TOKEN refusal (`internal` says why).
 * `mint` rotates the signing key first when it is due; `rotateIfDue` can also be called on a timer.
 */
export class TokenService {
  private keys: LiveKey[] = [];
  private readonly alg: TokenAlg;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly ttlMs: number;
  private readonly rotateEveryMs: number;
  private readonly skewMs: number;
  private readonly clock: Clock;
  private readonly file: string;
  private lastReloadAt = Number.NEGATIVE_INFINITY;
  private rotating: Promise<void> | null = null;

  private constructor(opts: TokenServiceOptions) {
    this.alg = opts.alg ?? 'EdDSA';
    this.issuer = opts.issuer ?? 'sluice';
    this.audience = opts.audience ?? this.issuer;
    this.ttlMs = opts.ttlMs ?? 900_000;
    this.rotateEveryMs = opts.rotateEveryMs ?? 7 * 86_400_000;
    this.skewMs = opts.clockSkewMs ?? 5_000;
    this.clock = opts.clock ?? systemClock;
    this.file = join(opts.dataDir, FILE);
  }

  /** Opens (or creates) the key file and makes sure a current signing key exists. */
  static async open(opts: TokenServiceOptions): Promise<TokenService> {
    const s = new TokenService(opts);
    await mkdir(opts.dataDir, { recursive: true });
    await s.load();
    await s.rotateIfDue();
    return s;
  }

  static fromConfig(cfg: SluiceConfig, clock?: Clock): Promise<TokenService> {
    return TokenService.open({
      dataDir: cfg.storage.dataDir,
      alg: cfg.tokens.alg,
      issuer: cfg.tokens.issuer,
      ttlMs: cfg.tokens.ttl,
      rotateEveryMs: cfg.tokens.rotateEvery,
      clock,
    });
  }

  /** Public keys for `/.well-known/jwks.json`: current and retired-but-still-verifying keys, never private parts. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => ({ ...k.publicJwk })) };
  }

  currentKid(): string {
    return this.current().kid;
  }

  async mint(input: MintInput): Promise<MintedToken> {
    await this.rotateIfDue();
    const key = this.current();
    const now = this.clock.now();
    const ttl = Math.max(1_000, Math.min(input.ttlMs ?? this.ttlMs, this.ttlMs));
    const iat = Math.floor(now / 1000);
    const exp = Math.floor((now + ttl) / 1000);
    const jti = randomBytes(16).toString('base64url');
    const aud =
      input.audience === undefined
        ? [this.audience]
        : typeof input.audience === 'string'
          ? [input.audience]
          : [...input.audience];
    const claims: JWTPayload & Record<string, unknown> = { tid: input.tenantId };
    if (input.scopes != null) claims.scope = input.scopes.join(' ');
    if (input.stepUp) {
      claims.amr = ['otp'];
      claims.auth_time = iat;
    }
    if (input.jkt) claims.cnf = { jkt: input.jkt };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setSubject(input.keyId)
      .setAudience(aud)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(key.signKey);
    return { token, expiresAt: exp * 1000, kid: key.kid, jti };
  }

  /** Claims of a valid token for `audience` (default: the service audience), or a SLUICE_INVALID_TOKEN refusal. */
  async verify(token: string, opts: { audience?: string } = {}): Promise<TokenClaims | Refusal> {
    const bad = (why: string) => refuse('SLUICE_INVALID_TOKEN', undefined, { internal: why });
    let kid = '';
    try {
      const { payload, protectedHeader } = await jwtVerify(
        token,
        async (header) => {
          kid = typeof header.kid === 'string' ? header.kid : '';
          let k = this.keys.find((x) => x.kid === kid);
          if (!k) {
            // Another instance sharing the data dir may have rotated: re-read, at most once a second.
            await this.maybeReload();
            k = this.keys.find((x) => x.kid === kid);
          }
          if (!k || k.alg !== header.alg) throw new Error(`unknown signing key "${kid}"`);
          return k.verifyKey;
        },
        {
          issuer: this.issuer,
          audience: opts.audience ?? this.audience,
          typ: 'at+jwt',
          algorithms: ['EdDSA', 'Ed25519', 'ES256'],
          currentDate: new Date(this.clock.now()),
          clockTolerance: Math.floor(this.skewMs / 1000),
          requiredClaims: ['sub', 'exp', 'iat', 'jti', 'aud'],
        },
      );
      if (typeof payload.tid !== 'string') return bad('no tenant claim');
      const cnf = payload.cnf as { jkt?: unknown } | undefined;
      return {
        keyId: payload.sub!,
        tenantId: payload.tid,
        scopes:
          typeof payload.scope === 'string' ? payload.scope.split(' ').filter((s) => s.length > 0) : null,
        audience: Array.isArray(payload.aud) ? payload.aud : [payload.aud!],
        stepUp: Array.isArray(payload.amr) && payload.amr.includes('otp'),
        jkt: typeof cnf?.jkt === 'string' ? cnf.jkt : null,
        issuedAt: payload.iat! * 1000,
        expiresAt: payload.exp! * 1000,
        jti: payload.jti!,
        kid: protectedHeader.kid ?? kid,
      };
    } catch (e) {
      return bad(e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e));
    }
  }

  /** Rotates when the current key is older than `rotateEveryMs`; prunes keys whose tokens have all expired. */
  async rotateIfDue(): Promise<boolean> {
    const now = this.clock.now();
    const cur = this.keys.at(-1);
    const due = cur === undefined || now - cur.createdAt >= this.rotateEveryMs;
    const prunable = this.keys.some((k) => this.expired(k, now));
    if (!due && !prunable) return false;
    if (this.rotating) {
      await this.rotating;
      return due;
    }
    this.rotating = (async () => {
      // Re-read first: another process on this data dir may already have rotated.
      await this.load();
      const latest = this.keys.at(-1);
      if (latest === undefined || this.clock.now() - latest.createdAt >= this.rotateEveryMs)
        await this.addKey();
      else this.keys = this.keys.filter((k) => !this.expired(k, this.clock.now()));
      await this.save();
    })();
    try {
      await this.rotating;
    } finally {
      this.rotating = null;
    }
    return due;
  }

  /** Forces a new signing key now (e.g. after a suspected leak the operator also revokes the old one). */
  async rotate(): Promise<void> {
    await this.load();
    await this.addKey();
    await this.save();
  }

  private current(): LiveKey {
    const k = this.keys.at(-1);
    if (!k) throw new Error('TokenService has no signing key (open() not awaited?)');
    return k;
  }

  /** A retired key can go once every token it could have signed is past `exp` (plus skew). */
  private expired(k: StoredKey, now: number): boolean {
    return k.retiredAt !== null && now > k.retiredAt + this.ttlMs + this.skewMs;
  }

  private async addKey(): Promise<void> {
    const now = this.clock.now();
    const kp = await generateKeyPair(this.alg, { extractable: true });
    const kid = `${now.toString(36)}-${randomBytes(6).toString('base64url')}`;
    const publicJwk: JWK = { ...(await exportJWK(kp.publicKey)), kid, alg: this.alg, use: 'sig' };
    const privateJwk: JWK = { ...(await exportJWK(kp.privateKey)), kid, alg: this.alg };
    const prev = this.keys.at(-1);
    if (prev && prev.retiredAt === null) prev.retiredAt = now;
    this.keys = this.keys.filter((k) => !this.expired(k, now));
    this.keys.push({
      kid,
      alg: this.alg,
      createdAt: now,
      retiredAt: null,
      privateJwk,
      publicJwk,
      signKey: kp.privateKey,
      verifyKey: kp.publicKey,
    });
  }

  private async maybeReload(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastReloadAt < 1_000) return;
    this.lastReloadAt = now;
    await this.load();
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const data = JSON.parse(text) as KeyFile;
    const known = new Map(this.keys.map((k) => [k.kid, k]));
    const out: LiveKey[] = [];
    for (const k of data.keys) {
      const live = known.get(k.kid);
      if (live) {
        live.retiredAt = k.retiredAt ?? live.retiredAt;
        out.push(live);
        continue;
      }
      out.push({
        ...k,
        signKey: (await importJWK(k.privateJwk, k.alg)) as CryptoKey,
        verifyKey: (await importJWK(k.publicJwk, k.alg)) as CryptoKey,
      });
    }
    this.keys = out.sort((a, b) => a.createdAt - b.createdAt);
  }

  private async save(): Promise<void> {
    const data: KeyFile = {
      version: 1,
      keys: this.keys.map(({ kid, alg, createdAt, retiredAt, privateJwk, publicJwk }) => ({
        kid,
        alg,
        createdAt,
        retiredAt,
        privateJwk,
        publicJwk,
      })),
    };
    // Write-then-rename so a crash never leaves half a key file; the file holds private keys: 0600.
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.file);
  }

  /** File mode of the key file (for tests and `sluice doctor`). */
  async fileMode(): Promise<number> {
    return (await stat(this.file)).mode & 0o777;
  }
}
