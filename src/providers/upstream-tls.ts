/**
 * TLS towards one upstream (`upstreams[].tls`): a pinned CA, a client certificate (mTLS) and SHA-256
 * fingerprint pins on the upstream's own certificate, as undici connect options. Files are read and
 * checked here (at start and at every policy apply); errors name the upstream and the field, never a
 * path or the passphrase.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkServerIdentity, createSecureContext, type PeerCertificate } from 'node:tls';
import type { UpstreamTlsConfig } from '../config/schema.js';

/** The error code a fingerprint mismatch carries (http-upstream.ts maps it to UpstreamError 'untrusted'). */
export const PIN_MISMATCH = 'ERR_SLUICE_CERT_PIN_MISMATCH';

/** A TLS file or setting that cannot be used; the message is safe to log (no path, no passphrase). */
export class UpstreamTlsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamTlsError';
  }
}

/** What undici's connector passes on to `tls.connect`. */
export interface TlsConnectOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  servername?: string;
  checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
  /** 0 with pins: every new connection is a full handshake whose certificate is checked. */
  maxCachedSessions?: number;
}

function readPem(upstream: string, field: string, file: string, baseDir: string): Buffer {
  try {
    return readFileSync(resolve(baseDir, file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UpstreamTlsError(`upstream "${upstream}": tls.${field}: cannot read the file (${code})`);
  }
}

/** Lowercase hex without colons, as the schema stores pins. */
export function fingerprintHex(cert: PeerCertificate): string {
  return (cert.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
}

/**
 * The connect options for `tls` (undefined when there is none). Throws UpstreamTlsError when a file
 * cannot be read, or the CA, certificate, key or passphrase do not load together.
 */
export function tlsConnectOptions(
  upstream: string,
  tls: UpstreamTlsConfig | undefined,
  baseDir: string,
): TlsConnectOptions | undefined {
  if (!tls) return undefined;
  const out: TlsConnectOptions = {};
  if (tls.ca) out.ca = readPem(upstream, 'ca', tls.ca, baseDir);
  if (tls.cert) out.cert = readPem(upstream, 'cert', tls.cert, baseDir);
  if (tls.key) out.key = readPem(upstream, 'key', tls.key, baseDir);
  if (tls.passphrase !== undefined) out.passphrase = tls.passphrase;
  if (tls.servername) out.servername = tls.servername;
  try {
    // Loads the CA, certificate and key as tls.connect will: a wrong passphrase or a key that does
    // not match its certificate fails here, at apply time, not on the first request.
    createSecureContext({ ca: out.ca, cert: out.cert, key: out.key, passphrase: out.passphrase });
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'invalid';
    throw new UpstreamTlsError(
      `upstream "${upstream}": tls: the CA, certificate or key does not load (${code}; check the files and passphrase)`,
    );
  }
  const pins = tls.fingerprints;
  if (pins && pins.length > 0) {
    const allowed = new Set(pins);
    out.maxCachedSessions = 0;
    out.checkServerIdentity = (host, cert) => {
      // The usual host name check first: a pin narrows what is trusted, it never widens it.
      const err = checkServerIdentity(host, cert);
      if (err) return err;
      if (allowed.has(fingerprintHex(cert))) return undefined;
      const e = new Error(
        `certificate sha256 ${cert.fingerprint256} does not match a pinned fingerprint`,
      ) as Error & { code: string };
      e.code = PIN_MISMATCH;
      return e;
    };
  }
  return out;
}
