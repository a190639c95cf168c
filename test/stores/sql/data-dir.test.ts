import { createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ensureDataDir,
  loadAuditPublicKey,
  loadOrCreateAuditKey,
  loadOrCreateInstanceId,
  loadOrCreatePepper,
  parsePepper,
} from '../../../src/stores/data-dir.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'sluice-dd-'));
  dirs.push(d);
  return d;
};
const mode = (p: string) => statSync(p).mode & 0o777;

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('data dir', () => {
  it('creates the directory with mode 0700', () => {
    const dir = join(tmp(), 'a', 'b');
    expect(ensureDataDir(dir)).toBe(dir);
    expect(mode(dir)).toBe(0o700);
  });

  it('creates a 32-byte pepper once, mode 0600, and reads the same one back', () => {
    const dir = tmp();
    const p1 = loadOrCreatePepper(dir, {});
    expect(p1).toHaveLength(32);
    expect(mode(join(dir, 'pepper'))).toBe(0o600);
    expect(loadOrCreatePepper(dir, {}).equals(p1)).toBe(true);
    expect(loadOrCreatePepper(tmp(), {}).equals(p1)).toBe(false);
  });

  it('takes the pepper from SLUICE_PEPPER as hex or base64, and refuses a short one', () => {
    const raw = Buffer.alloc(32, 7);
    expect(loadOrCreatePepper(tmp(), { SLUICE_PEPPER: raw.toString('hex') }).equals(raw)).toBe(true);
    expect(loadOrCreatePepper(tmp(), { SLUICE_PEPPER: raw.toString('base64') }).equals(raw)).toBe(true);
    expect(() => parsePepper('abcd')).toThrow(/at least 16 bytes/);
  });

  it('accepts a raw binary pepper file', () => {
    const dir = tmp();
    const raw = Buffer.from(Array.from({ length: 32 }, (_, i) => 200 + (i % 50)));
    writeFileSync(join(dir, 'pepper'), raw);
    expect(loadOrCreatePepper(dir, {}).equals(raw)).toBe(true);
  });

  it('creates an Ed25519 audit key once (0600) plus its public half, usable to sign and verify', () => {
    const dir = tmp();
    const k = loadOrCreateAuditKey(dir, {});
    expect(k.privateKey.asymmetricKeyType).toBe('ed25519');
    expect(mode(join(dir, 'audit-key.pem'))).toBe(0o600);
    expect(readFileSync(join(dir, 'audit-key.pub.pem'), 'utf8')).toBe(k.publicKeyPem);
    const again = loadOrCreateAuditKey(dir, {});
    expect(again.keyId).toBe(k.keyId);
    const sig = sign(null, Buffer.from('x'), again.privateKey);
    expect(verify(null, Buffer.from('x'), loadAuditPublicKey(join(dir, 'audit-key.pub.pem')), sig)).toBe(
      true,
    );
    expect(verify(null, Buffer.from('x'), createPublicKey(k.publicKeyPem), sig)).toBe(true);
  });

  it('takes the audit key from SLUICE_AUDIT_KEY (PEM or base64 PEM)', () => {
    const dir = tmp();
    const src = loadOrCreateAuditKey(dir, {});
    const file = readFileSync(join(dir, 'audit-key.pem'), 'utf8');
    expect(loadOrCreateAuditKey(tmp(), { SLUICE_AUDIT_KEY: file }).keyId).toBe(src.keyId);
    expect(
      loadOrCreateAuditKey(tmp(), { SLUICE_AUDIT_KEY: Buffer.from(file).toString('base64') }).keyId,
    ).toBe(src.keyId);
  });

  it('keeps a stable instance id, overridable by SLUICE_INSTANCE', () => {
    const dir = tmp();
    const id = loadOrCreateInstanceId(dir, {});
    expect(id).toMatch(/-[0-9a-f]{8}$/);
    expect(loadOrCreateInstanceId(dir, {})).toBe(id);
    expect(loadOrCreateInstanceId(dir, { SLUICE_INSTANCE: 'gw-a' })).toBe('gw-a');
  });
});
