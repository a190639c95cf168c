/**
 * Signed checkpoints of an audit chain. A `head` checkpoint vouches for the hash of the event at
 * `seq` (the chain head when it was written); a `prune` checkpoint records that events before `seq`
 * were deleted on purpose and that the event at `seq` chains from `hash`.
 *
 * Signatures are Ed25519 (node:crypto) over `checkpointPayload`, which covers kind, instance, seq,
 * hash and time. Pure computation: no disk, no clock.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import type { AuditEvent, AuditStore } from '../ports.js';

export type CheckpointKind = 'head' | 'prune';

export interface AuditCheckpoint {
  instance: string;
  kind: CheckpointKind;
  /** head: seq of the event vouched for. prune: first surviving seq. */
  seq: number;
  /** head: that event's hash. prune: the hash the first surviving event chains from (its prevHash). */
  hash: string;
  at: number;
  /** Fingerprint of the signing key (see `keyFingerprint`), to pick the key when several are trusted. */
  keyId: string | null;
  /** base64url Ed25519 signature over `checkpointPayload`; '' when unsigned. */
  signature: string;
}

/** The fields a signature covers. */
export type CheckpointFields = Pick<AuditCheckpoint, 'instance' | 'kind' | 'seq' | 'hash' | 'at'>;

/**
 * An audit store that also keeps signed checkpoints. `append(events, checkpoint)` stores the events
 * and the checkpoint in the same transaction, so a chain head is never visible unsigned.
 * Re-appending events that are already stored with the same hashes is a no-op (a retried write whose
 * acknowledgement was lost); a different event at a taken (instance, seq) throws `code = 'CONFLICT'`.
 */
export interface AuditCheckpointStore extends AuditStore {
  append(events: AuditEvent[], checkpoint?: AuditCheckpoint): Promise<void>;
  /** Every checkpoint of an instance, ordered by seq (head before prune at equal seq). */
  checkpoints(instance: string): Promise<AuditCheckpoint[]>;
}

/** Signs checkpoints; `keyId` is stored next to each signature. */
export interface CheckpointSigner {
  readonly keyId: string;
  sign(fields: CheckpointFields): string;
}

/** Verifies a checkpoint's signature against trusted keys; false when unsigned or signed by no trusted key. */
export type CheckpointVerifier = (cp: AuditCheckpoint) => boolean;

export function checkpointPayload(f: CheckpointFields): Buffer {
  return Buffer.from(
    `sluice-audit-checkpoint\n${f.kind}\n${f.instance}\n${f.seq}\n${f.hash}\n${f.at}`,
    'utf8',
  );
}

/** 16 hex chars of SHA-256 over the public key's DER (SPKI) encoding. */
export function keyFingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export function createCheckpointSigner(privateKey: KeyObject): CheckpointSigner {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('audit signing key must be an Ed25519 private key');
  }
  const keyId = keyFingerprint(privateKey);
  return {
    keyId,
    sign: (f) => sign(null, checkpointPayload(f), privateKey).toString('base64url'),
  };
}

/** Accepts a checkpoint signed by any of `publicKeys` (private keys are accepted and their public half used). */
export function createCheckpointVerifier(publicKeys: KeyObject | KeyObject[]): CheckpointVerifier {
  const keys = (Array.isArray(publicKeys) ? publicKeys : [publicKeys]).map((k) =>
    k.type === 'private' ? createPublicKey(k) : k,
  );
  const byId = new Map(keys.map((k) => [keyFingerprint(k), k]));
  return (cp) => {
    if (!cp.signature) return false;
    const sig = Buffer.from(cp.signature, 'base64url');
    const payload = checkpointPayload(cp);
    const preferred = cp.keyId ? byId.get(cp.keyId) : undefined;
    const candidates = preferred ? [preferred] : keys;
    return candidates.some((k) => {
      try {
        return verify(null, payload, k, sig);
      } catch {
        return false;
      }
    });
  };
}

/** Builds and signs a checkpoint. */
export function makeCheckpoint(signer: CheckpointSigner, fields: CheckpointFields): AuditCheckpoint {
  return { ...fields, keyId: signer.keyId, signature: signer.sign(fields) };
}
