/**
 * Short-lived access tokens (RFC 9068-style JWTs, `typ: at+jwt`) minted in exchange for an API key.
 *
 * Signing keys (EdDSA/Ed25519 by default, or ES256) live in a {@link SigningKeyStorage}: the control
 * store when one is given (`SqlSigningKeyStore`: every instance sharing the database signs and
 * verifies with the same keys, private parts sealed with a key derived from the shared pepper), else
 * `<dataDir>/jwt-keys.json` (mode 0600). The newest key signs; a key is rotated after
 * `rotateEveryMs` (one instance wins a concurrent rotation: the others adopt its key), and retired
 * keys stay in the JWKS and keep verifying until every token they could have signed has expired
 * (`retiredAt + maxTtl`), then they are dropped. A token signed with a key this instance has not
 * seen yet makes it re-read the storage (at most once a second). Time always comes from the Clock.
 *
 * Scopes in a token can only narrow: the gateway passes them as `Principal.tokenScopes`, and the access
 * policy intersects them with every other layer, so a token never grants more than its key has now.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
  /** Where the keys live; default the key file in `dataDir`. */
  storage?: SigningKeyStorage;
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

/** One signing key as stored. `generation` orders keys: each rotation adds the next one. */
export interface StoredKey {
  kid: string;
  alg: TokenAlg;
  generation: number;
  createdAt: number;
  retiredAt: number | null;
  privateJwk: JWK;
  publicJwk: JWK;
}

/**
 * Persistence of signing keys, shared by every instance that should sign and verify alike.
 * `rotate` is the only write: it adds `next` (generation `prev.generation + 1`, or 1), retires `prev`
 * at `next.createdAt` and deletes `drop`, atomically; it resolves false, changing nothing, when
 * another writer already added that generation (the caller reloads and uses the winner's key).
 */
export interface SigningKeyStorage {
  /** Every stored key, in any order. */
  load(): Promise<StoredKey[]>;
  rotate(prev: StoredKey | null, next: StoredKey, drop: readonly string[]): Promise<boolean>;
  /** Deletes keys by id (expired retired keys). */
  prune(kids: readonly string[]): Promise<void>;
  /** True when other processes may change the keys at any time (re-read periodically). */
  readonly shared: boolean;
}

interface KeyFile {
  version: 1;
  keys: StoredKey[];
}

/** The key file in a data dir (one instance, or several instances on one shared directory). */
export class FileKeyStorage implements SigningKeyStorage {
  readonly shared = false;
  constructor(readonly file: string) {}

  async load(): Promise<StoredKey[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const data = JSON.parse(text) as KeyFile;
    // Files written before generations existed: their order is the generation.
    return [...data.keys]
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((k, i) => ({ ...k, generation: k.generation ?? i + 1 }));
  }

  async rotate(prev: StoredKey | null, next: StoredKey, drop: readonly string[]): Promise<boolean> {
    const keys = await this.load();
    const latest = keys.reduce<StoredKey | null>((m, k) => (!m || k.generation > m.generation ? k : m), null);
    if ((latest?.kid ?? null) !== (prev?.kid ?? null)) return false;
    const out = keys
      .filter((k) => !drop.includes(k.kid))
      .map((k) =>
        prev && k.kid === prev.kid && k.retiredAt === null ? { ...k, retiredAt: next.createdAt } : k,
      );
    out.push(next);
    await this.write(out);
    return true;
  }

  async prune(kids: readonly string[]): Promise<void> {
    if (kids.length === 0) return;
    const keys = await this.load();
    await this.write(keys.filter((k) => !kids.includes(k.kid)));
  }

  private async write(keys: StoredKey[]): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const data: KeyFile = { version: 1, keys };
    // Write-then-rename so a crash never leaves half a key file; the file holds private keys: 0600.
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.file);
  }
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
  private readonly storage: SigningKeyStorage;
  private lastReloadAt = Number.NEGATIVE_INFINITY;
  /** Last re-read caused by an unknown `kid` (bounded to one a second: garbage kids cost nothing). */
  private lastMissReloadAt = Number.NEGATIVE_INFINITY;
  private rotating: Promise<void> | null = null;

  private constructor(opts: TokenServiceOptions) {
    this.alg = opts.alg ?? 'EdDSA';
    this.issuer = opts.issuer ?? 'sluice';
    this.audience = opts.audience ?? this.issuer;
    this.ttlMs = opts.ttlMs ?? 900_000;
    this.rotateEveryMs = opts.rotateEveryMs ?? 7 * 86_400_000;
    this.skewMs = opts.clockSkewMs ?? 5_000;
    this.clock = opts.clock ?? systemClock;
    this.storage = opts.storage ?? new FileKeyStorage(join(opts.dataDir, FILE));
  }

  /** Opens (or creates) the key storage and makes sure a current signing key exists. */
  static async open(opts: TokenServiceOptions): Promise<TokenService> {
    const s = new TokenService(opts);
    await mkdir(opts.dataDir, { recursive: true });
    await s.load();
    await s.rotateIfDue();
    return s;
  }

  /** From the config; with `storage` (the control store's, see `openCredentials`) keys are shared. */
  static fromConfig(cfg: SluiceConfig, clock?: Clock, storage?: SigningKeyStorage): Promise<TokenService> {
    return TokenService.open({
      storage,
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

  /**
   * Rotates when the current key is older than `rotateEveryMs`; prunes keys whose tokens have all
   * expired. With shared storage it also re-reads the keys (at most every 30 s), so the JWKS lists
   * keys other instances added: call it on a timer.
   */
  async rotateIfDue(): Promise<boolean> {
    const now = this.clock.now();
    const cur = this.keys.at(-1);
    const due = cur === undefined || now - cur.createdAt >= this.rotateEveryMs;
    const prunable = this.keys.some((k) => this.expired(k, now));
    const stale = this.storage.shared && now - this.lastReloadAt >= 30_000;
    if (!due && !prunable && !stale) return false;
    if (this.rotating) {
      await this.rotating;
      return due;
    }
    this.rotating = (async () => {
      // Re-read first: another instance may already have rotated.
      await this.load();
      for (let attempt = 0; attempt < 5; attempt++) {
        const latest = this.keys.at(-1);
        const t = this.clock.now();
        const drop = this.keys.filter((k) => this.expired(k, t)).map((k) => k.kid);
        if (latest !== undefined && t - latest.createdAt < this.rotateEveryMs) {
          if (drop.length > 0) await this.storage.prune(drop);
          if (drop.length > 0) await this.load();
          return;
        }
        if (await this.storage.rotate(latest ?? null, await this.newKey(latest), drop)) break;
        // Lost a race with another instance: read its key (the loop then finds it current).
        await this.load();
      }
      await this.load();
    })();
    try {
      await this.rotating;
    } catch (err) {
      // The key store is unreachable (e.g. the database restarts): keep signing and verifying with
      // the keys already loaded; the next call tries again. With no key at all, there is nothing to use.
      if (this.keys.length === 0) throw err;
    } finally {
      this.rotating = null;
    }
    return due;
  }

  /** Forces a new signing key now (e.g. after a suspected leak the operator also revokes the old one). */
  async rotate(): Promise<void> {
    await this.load();
    for (let attempt = 0; attempt < 5; attempt++) {
      const latest = this.keys.at(-1) ?? null;
      if (await this.storage.rotate(latest, await this.newKey(latest ?? undefined), [])) break;
      await this.load();
    }
    await this.load();
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

  /** A fresh key pair, the successor of `prev`. */
  private async newKey(prev: StoredKey | undefined): Promise<StoredKey> {
    const now = this.clock.now();
    const kp = await generateKeyPair(this.alg, { extractable: true });
    const kid = `${now.toString(36)}-${randomBytes(6).toString('base64url')}`;
    const publicJwk: JWK = { ...(await exportJWK(kp.publicKey)), kid, alg: this.alg, use: 'sig' };
    const privateJwk: JWK = { ...(await exportJWK(kp.privateKey)), kid, alg: this.alg };
    return {
      kid,
      alg: this.alg,
      generation: (prev?.generation ?? 0) + 1,
      createdAt: now,
      retiredAt: null,
      privateJwk,
      publicJwk,
    };
  }

  private async maybeReload(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastMissReloadAt < 1_000) return;
    this.lastMissReloadAt = now;
    await this.load();
  }

  private async load(): Promise<void> {
    const stored = await this.storage.load();
    this.lastReloadAt = this.clock.now();
    const known = new Map(this.keys.map((k) => [k.kid, k]));
    const out: LiveKey[] = [];
    for (const k of stored) {
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
    // The newest generation signs; keys of older generations only verify.
    this.keys = out.sort((a, b) => a.generation - b.generation || a.createdAt - b.createdAt);
  }

  /** File mode of the key file (for tests and `sluice doctor`); null when keys are not in a file. */
  async fileMode(): Promise<number | null> {
    if (!(this.storage instanceof FileKeyStorage)) return null;
    return (await stat(this.storage.file)).mode & 0o777;
  }
}
