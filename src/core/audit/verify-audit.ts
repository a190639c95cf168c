/**
 * Verifies every chain in an audit store (what `sluice audit verify` runs). Reads through the store
 * port page by page, so memory stays bounded however long the trail is; safe to run while
 * instances keep writing.
 */
import type { KeyObject } from 'node:crypto';
import { type AuditCheckpointStore, createCheckpointVerifier } from './checkpoint.js';
import { ChainVerifier, type ChainVerifyResult } from './verify-chain.js';

export interface AuditVerifyReport {
  /** True when every instance's chain verified. */
  ok: boolean;
  /** One result per instance, in instance order. */
  instances: ChainVerifyResult[];
}

export interface VerifyAuditOptions {
  /** Only this instance. */
  instance?: string;
  /** Events per read (default 5000). */
  pageSize?: number;
}

/**
 * Checks each instance's chain against its checkpoints, whose signatures must come from one of
 * `publicKeys` (pass several when instances sign with different keys). With `null`, signatures are
 * not checked and an unsigned tail is allowed: hashes and links only.
 */
export async function verifyAudit(
  store: AuditCheckpointStore,
  publicKeys: KeyObject | KeyObject[] | null,
  opts: VerifyAuditOptions = {},
): Promise<AuditVerifyReport> {
  const verifySignature = publicKeys === null ? undefined : createCheckpointVerifier(publicKeys);
  const pageSize = Math.max(1, opts.pageSize ?? 5000);
  const names = opts.instance !== undefined ? [opts.instance] : await store.instances();
  const results: ChainVerifyResult[] = [];
  for (const instance of names) {
    // Checkpoints first: each is committed with its events, so every event it names is readable next.
    const v = new ChainVerifier(instance, await store.checkpoints(instance), { verifySignature, instance });
    let afterSeq = 0;
    for (;;) {
      const page = await store.read({ instance, afterSeq, limit: pageSize });
      let stopped = false;
      for (const e of page) {
        if (!v.push(e)) {
          stopped = true;
          break;
        }
      }
      if (stopped || page.length < pageSize) break;
      afterSeq = page[page.length - 1]!.seq;
    }
    // Events written while we read are signed by checkpoints we have not seen yet.
    if (v.lastPushedSeq > (v.lastCheckpointSeq ?? 0)) {
      const later = await store.checkpoints(instance);
      v.addCheckpoints(later.filter((cp) => cp.seq <= v.lastPushedSeq));
    }
    results.push(v.finish());
  }
  return { ok: results.every((r) => r.ok), instances: results };
}
