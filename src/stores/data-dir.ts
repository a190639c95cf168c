/**
 * The data directory: SQLite database, key pepper, audit signing key and instance id live here.
 * Secrets are created on first use with mode 0600 (exclusive create, so two processes starting
 * together on one directory end up with the same secret), or taken from the environment.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { keyFingerprint } from '../core/audit/checkpoint.js';

/** Creates the directory (and parents) with mode 0700 if missing; returns its absolute path. */
export function ensureDataDir(dir: string): string {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  return abs;
}

/**
 * Creates `path` with `content` and mode 0600, atomically: written to a temporary file, then hard-linked
 * into place (link fails if the name exists), so a concurrent reader never sees a half-written secret.
 * If another process won the race, returns its content.
 */
function createExclusive(path: string, content: string | Buffer): Buffer {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { flag: 'wx', mode: 0o600 });
  try {
    chmodSync(tmp, 0o600); // the umask can only narrow the mode; make it exact
    linkSync(tmp, path);
    return Buffer.isBuffer(content) ? content : Buffer.from(content);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readFileSync(path);
  } finally {
    unlinkSync(tmp);
  }
}

function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const MIN_PEPPER_BYTES = 16;

/** Parses a pepper given as hex or base64 (standard or url-safe). Throws when shorter than 16 bytes. */
export function parsePepper(text: string): Buffer {
  const t = text.trim();
  const buf = /^(?:[0-9a-fA-F]{2})+$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (buf.length < MIN_PEPPER_BYTES) {
    throw new Error(`pepper must be at least ${MIN_PEPPER_BYTES} bytes (hex or base64)`);
  }
  return buf;
}

/**
 * The server pepper for API key hashes: `SLUICE_PEPPER` (hex or base64) when set, else
 * `<dir>/pepper` (32 random bytes written as hex, mode 0600), created on first use. Instances that
 * share a database must share the pepper (set the same `SLUICE_PEPPER` on each).
 */
export function loadOrCreatePepper(dir: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  const fromEnv = env.SLUICE_PEPPER;
  if (fromEnv) return parsePepper(fromEnv);
  const path = join(ensureDataDir(dir), 'pepper');
  const existing = readIfExists(path) ?? createExclusive(path, `${randomBytes(32).toString('hex')}\n`);
  const text = existing.toString('utf8').trim();
  // Hex text is what Sluice writes; a raw 32-byte file (written by hand) is accepted too.
  if (/^(?:[0-9a-fA-F]{2}){16,}$/.test(text)) return Buffer.from(text, 'hex');
  if (existing.length >= MIN_PEPPER_BYTES) return existing;
  throw new Error(`${path} does not hold a pepper of at least ${MIN_PEPPER_BYTES} bytes`);
}

/** A pepper being rotated out: still accepted (and rewritten under the current one) until `until`. */
export interface PreviousPepper {
  pepper: Buffer;
  until: number;
}

/**
 * `SLUICE_PEPPER_PREVIOUS` (hex or base64) with `SLUICE_PEPPER_PREVIOUS_UNTIL` (a date-time): the
 * pepper rotation procedure of docs/trust.md. Throws when one is set without the other or is malformed.
 */
export function loadPreviousPepper(env: NodeJS.ProcessEnv = process.env): PreviousPepper | undefined {
  const p = env.SLUICE_PEPPER_PREVIOUS;
  const u = env.SLUICE_PEPPER_PREVIOUS_UNTIL;
  if (!p && !u) return undefined;
  if (!p || !u) throw new Error('SLUICE_PEPPER_PREVIOUS and SLUICE_PEPPER_PREVIOUS_UNTIL are set together');
  const until = /^\d{4}-\d{2}-\d{2}/.test(u) ? Date.parse(u) : Number.NaN;
  if (Number.isNaN(until))
    throw new Error(`SLUICE_PEPPER_PREVIOUS_UNTIL "${u}" is not a date-time (e.g. 2026-12-31T00:00:00Z)`);
  return { pepper: parsePepper(p), until };
}

export interface AuditKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM of the public key, for `sluice audit verify --public-key` elsewhere. */
  publicKeyPem: string;
  /** Fingerprint stored with each checkpoint signature. */
  keyId: string;
}

function auditKeyFrom(pem: string | Buffer): AuditKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519')
    throw new Error('the audit key must be an Ed25519 private key');
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyFingerprint(publicKey),
  };
}

/**
 * The Ed25519 key that signs audit chain heads: `SLUICE_AUDIT_KEY` (PKCS#8 PEM, or that PEM in
 * base64) when set, else `<dir>/audit-key.pem` (mode 0600), created on first use. Also writes the
 * public half to `<dir>/audit-key.pub.pem` so auditors can verify without the private key.
 */
export function loadOrCreateAuditKey(dir: string, env: NodeJS.ProcessEnv = process.env): AuditKey {
  const fromEnv = env.SLUICE_AUDIT_KEY;
  if (fromEnv) {
    const pem = fromEnv.includes('-----BEGIN') ? fromEnv : Buffer.from(fromEnv, 'base64').toString('utf8');
    return auditKeyFrom(pem);
  }
  const abs = ensureDataDir(dir);
  const path = join(abs, 'audit-key.pem');
  let pem = readIfExists(path);
  if (!pem) {
    const { privateKey } = generateKeyPairSync('ed25519');
    pem = createExclusive(path, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  }
  const key = auditKeyFrom(pem);
  const pubPath = join(abs, 'audit-key.pub.pem');
  if (!readIfExists(pubPath)) createExclusive(pubPath, key.publicKeyPem);
  return key;
}

/** Loads a public (SPKI) or private PEM as a key usable to verify audit checkpoints. */
export function loadAuditPublicKey(path: string): KeyObject {
  const pem = readFileSync(path, 'utf8');
  return pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
}

/**
 * This instance's name in the audit trail: `SLUICE_INSTANCE` when set, else `<dir>/instance-id`,
 * created on first use as `<hostname>-<8 hex>`. Stable across restarts, so the chain resumes.
 * Two processes must not share one instance id at the same time.
 */
export function loadOrCreateInstanceId(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLUICE_INSTANCE) return env.SLUICE_INSTANCE;
  const path = join(ensureDataDir(dir), 'instance-id');
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '')
      .slice(0, 40) || 'sluice';
  const existing = readIfExists(path) ?? createExclusive(path, `${host}-${randomBytes(4).toString('hex')}\n`);
  return existing.toString('utf8').trim();
}
