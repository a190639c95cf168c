/**
 * Batches usage records off the request path: `record` is O(1); rows are written to the ledger in
 * one transaction per batch. A failed write keeps the rows and retries; `flush` drains everything.
 * With a `journal`, every row is also in the local journal from `record` on (see src/stores/journal.ts).
 */
import type { UsageLedger, UsageRecord } from '../core/ports.js';

export interface UsageWriterOptions {
  ledger: UsageLedger;
  batchSize?: number;
  flushEveryMs?: number;
  /** Upper bound on buffered rows; past it the oldest are written first and new ones still accepted, overflow counted. */
  maxBuffered?: number;
  onError?: (err: Error) => void;
  /** Called after a batch was written following one or more failures (the store is back). */
  onRecovered?: () => void;
  /** Local write-ahead journal: each row is journaled when recorded and acknowledged once written. */
  journal?: { append(kind: 'u', row: UsageRecord): void; ack(kind: 'u', n: number): void };
}

export class UsageWriter {
  private buf: UsageRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private written = 0;
  private overflowed = 0;
  private failing = false;

  constructor(private readonly opts: UsageWriterOptions) {
    this.timer = setInterval(() => void this.drain(), opts.flushEveryMs ?? 250);
    this.timer.unref();
  }

  record(r: UsageRecord): void {
    if (this.buf.length >= (this.opts.maxBuffered ?? 1_000_000)) {
      this.overflowed++;
      return;
    }
    this.opts.journal?.append('u', r);
    this.buf.push(r);
    if (this.buf.length >= (this.opts.batchSize ?? 1000)) void this.drain();
  }

  private drain(): Promise<void> {
    if (this.writing) return this.writing;
    if (this.buf.length === 0) return Promise.resolve();
    const batch = this.buf.splice(0, this.opts.batchSize ?? 1000);
    this.writing = this.opts.ledger
      .record(batch)
      .then(
        () => {
          this.written += batch.length;
          this.opts.journal?.ack('u', batch.length);
          if (this.failing) {
            this.failing = false;
            this.opts.onRecovered?.();
          }
        },
        (err: Error) => {
          this.buf.unshift(...batch);
          this.failing = true;
          this.opts.onError?.(err);
        },
      )
      .finally(() => {
        this.writing = undefined;
      });
    return this.writing;
  }

  /** Writes everything buffered; rejects if the ledger keeps failing. */
  async flush(attempts = 50): Promise<void> {
    for (let i = 0; i < attempts && (this.buf.length > 0 || this.writing); i++) {
      await this.drain();
      if (this.buf.length > 0 && !this.writing)
        await new Promise((r) => setTimeout(r, Math.min(20 * 2 ** i, 1000)));
    }
    if (this.buf.length > 0) throw new Error(`usage: ${this.buf.length} rows could not be written`);
  }

  stats(): { buffered: number; written: number; overflowed: number; failing: boolean } {
    return {
      buffered: this.buf.length,
      written: this.written,
      overflowed: this.overflowed,
      failing: this.failing,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
