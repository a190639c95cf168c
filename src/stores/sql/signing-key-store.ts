/**
 * Credentials state in the control store, shared by every instance on one database:
 * - `signing_keys`: the JWT signing keys ({@link SqlSigningKeyStore}); private JWKs are sealed
 *   (AES-256-GCM) under a key derived from the server pepper, which instances sharing a database
 *   share already, so a database dump alone cannot mint tokens;
 * - `auth_replay`: one-time-use marks ({@link SqlReplayStore}): DPoP proof ids and the last TOTP time
 *   step per subject, each with an expiry, pruned as it goes. Used when Redis is not configured.
 * Both tables are created by migration `0006_signing_keys` (src/stores/sql/migrations.ts).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { ReplayCache } from '../../auth/dpop.js';
import type { SigningKeyStorage, StoredKey, TokenAlg } from '../../auth/tokens.js';
import type { SharedTotpGuard } from '../../auth/totp.js';
import type { SqlDatabase } from './db.js';

interface SigningKeysTable {
  kid: string;
  generation: number;
  alg: string;
  created_at: number;
  retired_at: number | null;
  /** `v1.<iv>.<ciphertext>.<tag>` (base64url): the private JWK, sealed. */
  private_jwk: string;
  public_jwk: string;
}

interface AuthReplayTable {
  key: string;
  value: number;
  expires_at: number;
}

interface CredentialsDb {
  signing_keys: SigningKeysTable;
  auth_replay: AuthReplayTable;
}

function credentialsDb(sql: SqlDatabase): Kysely<CredentialsDb> {
  return sql.db as unknown as Kysely<CredentialsDb>;
}

/** True for a primary-key or unique violation on PostgreSQL (23505) or SQLite (SQLITE_CONSTRAINT_*). */
function isUniqueViolation(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '');
  return code === '23505' || code.startsWith('SQLITE_CONSTRAINT');
}

/** The sealing key for private JWKs: HKDF-SHA-256 of the pepper, so every instance derives the same one. */
function sealingKey(pepper: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', pepper, 'sluice', 'jwt-signing-keys/v1', 32));
}

export function sealJwk(jwk: JWK, key: Buffer, kid: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(kid)); // a sealed key cannot be moved to another row
  const body = Buffer.concat([c.update(JSON.stringify(jwk), 'utf8'), c.final()]);
  return ['v1', iv, body, c.getAuthTag()]
    .map((x) => (typeof x === 'string' ? x : x.toString('base64url')))
    .join('.');
}

export function openJwk(sealed: string, key: Buffer, kid: string): JWK {
  const [v, iv, body, tag] = sealed.split('.');
  if (v !== 'v1' || !iv || !body || !tag) throw new Error(`signing key ${kid}: unknown sealing format`);
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  d.setAAD(Buffer.from(kid));
  d.setAuthTag(Buffer.from(tag, 'base64url'));
  try {
    const text = Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
    return JSON.parse(text) as JWK;
  } catch {
    // Never the key material or the pepper: only what to check.
    throw new Error(
      `signing key ${kid} cannot be opened: every instance sharing the database needs the same SLUICE_PEPPER`,
    );
  }
}

/** Signing keys in the control database (SQLite or PostgreSQL). */
export class SqlSigningKeyStore implements SigningKeyStorage {
  readonly shared = true;
  private readonly key: Buffer;
  private readonly previousKey: Buffer | undefined;

  /**
   * `previousPepper`: the pepper being rotated out (docs/trust.md). A key sealed under it is opened
   * with it and sealed again under the current pepper, so the old pepper is soon needed by nothing.
   */
  constructor(
    private readonly sql: SqlDatabase,
    pepper: Buffer,
    previousPepper?: Buffer,
  ) {
    this.key = sealingKey(pepper);
    this.previousKey = previousPepper ? sealingKey(previousPepper) : undefined;
  }

  async load(): Promise<StoredKey[]> {
    const db = credentialsDb(this.sql);
    const rows = await db.selectFrom('signing_keys').selectAll().execute();
    const out: StoredKey[] = [];
    for (const r of rows) {
      let privateJwk: JWK;
      try {
        privateJwk = openJwk(r.private_jwk, this.key, r.kid);
      } catch (err) {
        if (!this.previousKey) throw err;
        privateJwk = openJwk(r.private_jwk, this.previousKey, r.kid);
        // Only the row as read is replaced: a concurrent reseal by another instance is left alone.
        await db
          .updateTable('signing_keys')
          .set({ private_jwk: sealJwk(privateJwk, this.key, r.kid) })
          .where('kid', '=', r.kid)
          .where('private_jwk', '=', r.private_jwk)
          .execute();
      }
      out.push({
        kid: r.kid,
        alg: r.alg as TokenAlg,
        generation: Number(r.generation),
        createdAt: Number(r.created_at),
        retiredAt: r.retired_at === null ? null : Number(r.retired_at),
        privateJwk,
        publicJwk: JSON.parse(r.public_jwk) as JWK,
      });
    }
    return out;
  }

  async rotate(prev: StoredKey | null, next: StoredKey, drop: readonly string[]): Promise<boolean> {
    try {
      await credentialsDb(this.sql)
        .transaction()
        .execute(async (tx) => {
          await tx
            .insertInto('signing_keys')
            .values({
              kid: next.kid,
              generation: next.generation,
              alg: next.alg,
              created_at: next.createdAt,
              retired_at: null,
              private_jwk: sealJwk(next.privateJwk, this.key, next.kid),
              public_jwk: JSON.stringify(next.publicJwk),
            })
            .execute();
          if (prev)
            await tx
              .updateTable('signing_keys')
              .set({ retired_at: next.createdAt })
              .where('kid', '=', prev.kid)
              .where('retired_at', 'is', null)
              .execute();
          if (drop.length > 0)
            await tx
              .deleteFrom('signing_keys')
              .where('kid', 'in', [...drop])
              .execute();
        });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false; // another instance added this generation first
      throw err;
    }
  }

  async prune(kids: readonly string[]): Promise<void> {
    if (kids.length === 0) return;
    await credentialsDb(this.sql)
      .deleteFrom('signing_keys')
      .where('kid', 'in', [...kids])
      .execute();
  }

  /** Number of stored keys (tests). */
  async count(): Promise<number> {
    const r = await credentialsDb(this.sql)
      .selectFrom('signing_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}

/** Expired marks are deleted once per this many claims (bounded table, no timer). */
const PRUNE_EVERY = 512;

/**
 * One-time-use marks in the control database. Both operations are one conditional upsert, atomic on
 * SQLite and PostgreSQL: the row is written only when absent, expired, or (TOTP) older.
 */
export class SqlReplayStore implements ReplayCache, SharedTotpGuard {
  private claims = 0;
  constructor(
    private readonly sql: SqlDatabase,
    private readonly prefix = 'sluice:',
  ) {}

  /** DPoP: true the first time `key` is seen before `expiresAt`; false for a replay. */
  async remember(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.upsert(`${this.prefix}dpop:${key}`, 0, Math.max(expiresAt, now + 1), now, false);
  }

  /** TOTP: true when `step` is newer than the last step recorded for `subject` (and records it). */
  async claimStep(subject: string, step: number, ttlMs: number, now: number): Promise<boolean> {
    return this.upsert(`${this.prefix}totp:${subject}`, step, now + ttlMs, now, true);
  }

  private async upsert(key: string, value: number, expiresAt: number, now: number, newer: boolean) {
    const db = credentialsDb(this.sql);
    if (++this.claims % PRUNE_EVERY === 0)
      await db.deleteFrom('auth_replay').where('expires_at', '<=', now).execute();
    const r = await db
      .insertInto('auth_replay')
      .values({ key, value, expires_at: expiresAt })
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet({ value, expires_at: expiresAt })
          .where((eb) => {
            const expired = eb('auth_replay.expires_at', '<=', now);
            return newer ? eb.or([expired, eb('auth_replay.value', '<', value)]) : expired;
          }),
      )
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }
}
