/**
 * `upstreams[].tls` as connect options: files load or fail without naming a path or the passphrase,
 * and the fingerprint check accepts exactly the pinned certificate (host name still checked).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { toUpstreamError } from '../../src/providers/http-upstream.js';
import { PIN_MISMATCH, tlsConnectOptions, UpstreamTlsError } from '../../src/providers/upstream-tls.js';

let dir: string;
const PASS = 'unit-test-passphrase-81f';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  for (const name of ['a', 'b']) {
    run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
    ]);
  }
  run(['pkey', '-in', 'a.key', '-aes256', '-passout', `pass:${PASS}`, '-out', 'a-enc.key']);
});

/** The fields tls.checkServerIdentity and the pin read, from a PEM file. */
function peer(name: string): PeerCertificate {
  const x = new X509Certificate(readFileSync(join(dir, `${name}.pem`)));
  return {
    subject: { CN: name },
    subjectaltname: x.subjectAltName,
    fingerprint256: x.fingerprint256,
  } as unknown as PeerCertificate;
}

const hex = (name: string) => peer(name).fingerprint256.replace(/:/g, '').toLowerCase();

describe('tlsConnectOptions', () => {
  it('no tls: no options', () => {
    expect(tlsConnectOptions('u', undefined, dir)).toBeUndefined();
  });

  it('loads the CA and an encrypted client key with its passphrase', () => {
    const o = tlsConnectOptions(
      'u',
      { ca: 'b.pem', cert: 'a.pem', key: 'a-enc.key', passphrase: PASS },
      dir,
    )!;
    expect(o.ca?.toString()).toContain('BEGIN CERTIFICATE');
    expect(o.key?.toString()).toContain('ENCRYPTED');
    expect(o.checkServerIdentity).toBeUndefined();
  });

  it('a missing file or a wrong passphrase fails naming the upstream and field, never the path or passphrase', () => {
    const missing = () => tlsConnectOptions('tee', { cert: 'a.pem', key: 'secret-dir/nope.key' }, dir);
    expect(missing).toThrowError(UpstreamTlsError);
    expect(missing).toThrowError('upstream "tee": tls.key: cannot read the file (ENOENT)');
    try {
      tlsConnectOptions('tee', { cert: 'a.pem', key: 'a-enc.key', passphrase: 'wrong-pass-77' }, dir);
      expect.unreachable();
    } catch (err) {
      const m = (err as Error).message;
      expect(m).toMatch(/^upstream "tee": tls: the CA, certificate or key does not load/);
      expect(m).not.toContain('wrong-pass-77');
      expect(m).not.toContain('a-enc.key');
      expect(m).not.toContain(dir);
    }
  });

  it('a key that belongs to another certificate is refused', () => {
    expect(() => tlsConnectOptions('tee', { cert: 'a.pem', key: 'b.key' }, dir)).toThrowError(
      /does not load/,
    );
  });

  it('fingerprint pins: the pinned certificate passes, another one is refused with the pin code', () => {
    const o = tlsConnectOptions('tee', { fingerprints: [hex('a')] }, dir)!;
    expect(o.maxCachedSessions).toBe(0);
    expect(o.checkServerIdentity!('127.0.0.1', peer('a'))).toBeUndefined();
    const err = o.checkServerIdentity!('127.0.0.1', peer('b')) as Error & { code: string };
    expect(err.code).toBe(PIN_MISMATCH);
    expect(err.message).toContain(peer('b').fingerprint256);
  });

  it('a pin does not replace the host name check', () => {
    const o = tlsConnectOptions('tee', { fingerprints: [hex('a')] }, dir)!;
    const err = o.checkServerIdentity!('10.9.9.9', peer('a')) as Error & { code: string };
    expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe('toUpstreamError: certificate failures are untrusted, not connect errors', () => {
  it('a pin mismatch and a failed chain are `untrusted` before sending (never retried, never forwarded)', () => {
    const pin = Object.assign(new Error('certificate sha256 AA:BB does not match a pinned fingerprint'), {
      code: PIN_MISMATCH,
    });
    expect(toUpstreamError(pin, 'tee')).toMatchObject({
      kind: 'untrusted',
      beforeSend: true,
      message: 'tee: certificate sha256 AA:BB does not match a pinned fingerprint',
    });
    const chain = Object.assign(new Error('self-signed certificate'), {
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
    expect(toUpstreamError(chain, 'tee')).toMatchObject({ kind: 'untrusted', beforeSend: true });
    // A refused connection stays a connect error (retried once, as before).
    const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    expect(toUpstreamError(refused, 'tee')).toMatchObject({ kind: 'connect', beforeSend: true });
  });
});
