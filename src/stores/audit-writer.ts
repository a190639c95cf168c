/**
 * The audit sink the request path talks to. `emit` only appends to a bounded in-memory queue (O(1),
 * never blocks, never throws); a background loop chains the queued events, signs the new head and
 * stores each batch with its checkpoint in one transaction (group commit).
 *
 * Nothing is dropped silently: when the queue is full, events are counted as overflowed, reported
 * through `onOverflow`, and an `audit.overflow` event carrying the count is written into the chain
 * as soon as there is room. A failing store keeps its batch queued and is retried with backoff.
 *
 * With a `journal`, each event is chained as it is emitted (once the chain has resumed) and appended
 * to the local journal; the gateway awaits the journal's group commit before ending a response, so
 * an acknowledged request's event survives a kill -9 and a control-store outage, and is written back
 * later with its original seq and hash (the chain stays intact). Committed batches are acknowledged
 * to the journal, which then drops them.
 */
import type { AuditChain } from '../core/audit/chain.js';
import {
  type AuditCheckpoint,
  type AuditCheckpointStore,
  type CheckpointSigner,
  makeCheckpoint,
} from '../core/audit/checkpoint.js';
import {
  type AuditEvent,
  type AuditEventInput,
  type AuditSink,
  type Clock,
  systemClock,
} from '../core/ports.js';

export interface AuditOverflowInfo {
  /** Events dropped in this overflow episode so far. */
  dropped: number;
  /** Events dropped since the writer started. */
  total: number;
  /** false: the first drop of an episode; true: the episode's marker event was queued with `dropped`. */
  recorded: boolean;
}

/** The part of the local journal (src/stores/journal.ts) the writer uses. */
export interface AuditJournal {
  append(kind: 'a', event: AuditEvent): void;
  ack(kind: 'a', n: number): void;
}

export interface AuditWriterOptions {
  store: AuditCheckpointStore;
  /** Local write-ahead journal: events are chained at emit and journaled (see above). */
  journal?: AuditJournal;
  /** The instance's chain; the writer resumes it from `store.head(chain.instance)` before writing. */
  chain: AuditChain;
  signer: CheckpointSigner;
  /** Most events held in memory, queued plus in flight. */
  queueSize: number;
  /** Most events per transaction. */
  batchSize: number;
  /** How long an event may wait for more to share its transaction. */
  flushEveryMs: number;
  /** Time for checkpoints and overflow markers (default: system clock). */
  clock?: Clock;
  /** First retry delay after a failed write (default 100 ms), doubling up to `retryMaxMs` (default 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  onOverflow?: (info: AuditOverflowInfo) => void;
  /** Store failures (the writer keeps retrying). */
  onError?: (err: unknown) => void;
}

interface Batch {
  inputs: AuditEventInput[];
  events: AuditEvent[];
  checkpoint: AuditCheckpoint;
}

interface Waiter {
  target: number;
  resolve: () => void;
}

/** Events hashed per event-loop turn (~5 µs each): keeps each turn well under a millisecond. */
const CHAIN_SLICE = 32;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Compact the queue array once this many taken slots sit at its front. */
const COMPACT_AT = 4096;

export class AuditWriter implements AuditSink {
  readonly #o: AuditWriterOptions;
  readonly #clock: Clock;
  #queue: AuditEventInput[] = [];
  #qHead = 0;
  #inflight: Batch | undefined;
  /** Items (events and markers) ever queued; item i is durable once #done > i (FIFO). */
  #enqueued = 0;
  #done = 0;
  #written = 0;
  #overflowTotal = 0;
  #pending = 0;
  #pendingFirstAt = 0;
  #pendingLastAt = 0;
  #markers = 0;
  #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #ready: Promise<void> | undefined;
  #failures = 0;
  #closed = false;
  /** The chain resumed from the store: events may be chained at emit (journal mode). */
  #resumed = false;
  /** Chain at emit (journal mode); switched off for good after a seq conflict. */
  #chainAtEmit = true;
  /** After a seq conflict, queued events chained at emit are chained again from the new head. */
  #rechain = false;

  constructor(opts: AuditWriterOptions) {
    if (opts.queueSize < 2 || opts.batchSize < 1)
      throw new RangeError('AuditWriter: queueSize >= 2 and batchSize >= 1');
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Resumes the chain from the store (also done lazily before the first write). */
  start(): Promise<void> {
    this.#ready ??= this.#resume();
    return this.#ready;
  }

  emit(event: AuditEventInput): void {
    try {
      if (this.#closed) {
        this.#drop();
        return;
      }
      if (this.#pending > 0 && this.#room() >= 2) this.#pushMarker();
      if (this.#room() < 1) {
        this.#drop();
        return;
      }
      this.#queue.push(this.#journaled(event));
      this.#enqueued++;
      this.#schedule();
    } catch {
      // emit must never throw into the request path; a failure here is accounted as overflow.
      this.#overflowTotal++;
    }
  }

  /** Resolves when everything emitted before the call (and any pending overflow marker) is durable. */
  async flush(): Promise<void> {
    const needMarkers = this.#markers + (this.#pending > 0 ? 1 : 0);
    for (;;) {
      if (this.#pending > 0 && this.#room() >= 1) this.#pushMarker();
      const target = this.#enqueued;
      if (this.#done < target) {
        const done = new Promise<void>((resolve) => this.#waiters.push({ target, resolve }));
        // Someone now waits for durability (a shutdown): a retry in progress must keep the process alive.
        this.#retryTimer?.ref();
        void this.#drain();
        await done;
      }
      if (this.#markers >= needMarkers) return;
      // The queue was full when the overflow ended: the marker goes in now that the drain made room.
    }
  }

  stats(): { queued: number; overflowed: number; written: number } {
    return { queued: this.#size(), overflowed: this.#overflowTotal, written: this.#written };
  }

  /** Flushes, then stops; later emits are counted as overflowed. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

  // --- queue -----------------------------------------------------------------------------------

  /** Journal mode, chain resumed: chains the event now and journals it; otherwise returns it as is. */
  #journaled(input: AuditEventInput): AuditEventInput {
    const j = this.#o.journal;
    if (!j || !this.#resumed || !this.#chainAtEmit) return input;
    const ev = this.#o.chain.next(input);
    j.append('a', ev);
    return ev;
  }

  #size(): number {
    return this.#queue.length - this.#qHead + (this.#inflight?.inputs.length ?? 0);
  }

  #room(): number {
    return this.#o.queueSize - this.#size();
  }

  #drop(): void {
    const now = this.#clock.now();
    this.#overflowTotal++;
    if (this.#pending++ === 0) {
      this.#pendingFirstAt = now;
      this.#notifyOverflow(false);
    }
    this.#pendingLastAt = now;
  }

  #pushMarker(): void {
    const dropped = this.#pending;
    this.#queue.push(
      this.#journaled({
        at: this.#clock.now(),
        requestId: null,
        keyId: null,
        tenantId: null,
        projectId: null,
        clientIp: null,
        country: null,
        userAgent: null,
        action: 'audit.overflow',
        model: null,
        decision: 'system',
        reason: 'audit.overflow',
        policyVersion: null,
        details: { dropped, firstAt: this.#pendingFirstAt, lastAt: this.#pendingLastAt },
      }),
    );
    this.#enqueued++;
    this.#markers++;
    this.#pending = 0;
    this.#notifyOverflow(true, dropped);
    this.#schedule();
  }

  #notifyOverflow(recorded: boolean, dropped = this.#pending): void {
    try {
      this.#o.onOverflow?.({ dropped, total: this.#overflowTotal, recorded });
    } catch {
      // A throwing callback must not break emit.
    }
  }

  #take(n: number): AuditEventInput[] {
    const inputs = this.#queue.slice(this.#qHead, this.#qHead + n);
    this.#qHead += inputs.length;
    if (this.#qHead >= this.#queue.length) {
      this.#queue = [];
      this.#qHead = 0;
    } else if (this.#qHead >= COMPACT_AT && this.#qHead * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#qHead);
      this.#qHead = 0;
    }
    return inputs;
  }

  // --- draining --------------------------------------------------------------------------------

  /** Starts the drain soon: right away (next turn) when a batch is full, else after flushEveryMs. */
  #schedule(): void {
    if (this.#running || this.#closed) return;
    if (this.#queue.length - this.#qHead >= this.#o.batchSize) {
      if (!this.#immediate) {
        this.#immediate = setImmediate(() => {
          this.#immediate = undefined;
          void this.#drain();
        });
      }
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#drain();
      }, this.#o.flushEveryMs);
      this.#timer.unref();
    }
  }

  #drain(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#running ??= this.#loop()
      .catch((err) => this.#report(err))
      .finally(() => {
        this.#running = undefined;
        if (this.#size() > 0) {
          if (this.#waiters.length > 0) void this.#drain();
          else this.#schedule();
        }
      });
    return this.#running;
  }

  async #loop(): Promise<void> {
    await this.start();
    for (;;) {
      if (!this.#inflight) {
        if (this.#pending > 0 && this.#room() >= 1) this.#pushMarker();
        if (this.#queue.length - this.#qHead === 0) return;
        const inputs = this.#take(this.#o.batchSize);
        try {
          this.#inflight = await this.#chainBatch(inputs);
        } catch (err) {
          // Unreachable with AuditChain (it normalises every input); if a signer fails, the loss is recorded.
          this.#report(err);
          for (let i = 0; i < inputs.length; i++) this.#drop();
          this.#done += inputs.length;
          this.#wake();
          continue;
        }
      }
      const batch = this.#inflight;
      try {
        await this.#o.store.append(batch.events, batch.checkpoint);
      } catch (err) {
        this.#report(err);
        await this.#backoff();
        if ((err as { code?: unknown } | null)?.code === 'CONFLICT') {
          // Another writer took these seqs (two processes with one instance id): continue after its head.
          // Events already chained at emit are chained again (their journaled copies are superseded).
          this.#chainAtEmit = false;
          this.#rechain = true;
          await this.#resumeOnce().catch((e) => this.#report(e));
          this.#inflight = await this.#chainBatch(batch.inputs);
        }
        continue;
      }
      this.#failures = 0;
      this.#inflight = undefined;
      this.#o.journal?.ack('a', batch.events.length);
      this.#done += batch.inputs.length;
      this.#written += batch.events.length;
      this.#wake();
    }
  }

  /** Chains a batch in slices, yielding between them so hashing never holds the event loop for long. */
  async #chainBatch(inputs: AuditEventInput[]): Promise<Batch> {
    const { chain, signer } = this.#o;
    const events: AuditEvent[] = [];
    for (let i = 0; i < inputs.length; i++) {
      if (i > 0 && i % CHAIN_SLICE === 0) await yieldToLoop();
      const input = inputs[i]!;
      // Chained (and journaled) at emit: kept as it is, unless a conflict moved the chain.
      if (!this.#rechain && 'hash' in input && 'seq' in input) events.push(input as AuditEvent);
      else events.push(chain.next(input));
    }
    const last = events[events.length - 1]!;
    const checkpoint = makeCheckpoint(signer, {
      instance: chain.instance,
      kind: 'head',
      seq: last.seq,
      hash: last.hash,
      at: this.#clock.now(),
    });
    return { inputs, events, checkpoint };
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (this.#done >= w.target) w.resolve();
      else still.push(w);
    }
    this.#waiters = still;
  }

  async #resume(): Promise<void> {
    for (;;) {
      try {
        await this.#resumeOnce();
        this.#failures = 0;
        // Events emitted before the chain resumed are chained in their batch; chaining at emit starts
        // only on an empty queue, so the queue's order stays the chain's order.
        if (this.#size() === 0) this.#resumed = true;
        return;
      } catch (err) {
        this.#report(err);
        await this.#backoff();
      }
    }
  }

  async #resumeOnce(): Promise<void> {
    const head = await this.#o.store.head(this.#o.chain.instance);
    this.#o.chain.resume(head && { seq: head.seq, hash: head.hash });
  }

  #report(err: unknown): void {
    try {
      this.#o.onError?.(err);
    } catch {
      // ignore: reporting must not stop the retries
    }
  }

  #backoff(): Promise<void> {
    const min = this.#o.retryMinMs ?? 100;
    const max = this.#o.retryMaxMs ?? 5000;
    const ms = Math.min(max, min * 2 ** Math.min(this.#failures++, 20));
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#retryTimer = undefined;
        resolve();
      }, ms);
      // Keep the process alive only while someone waits for durability (a flush on shutdown).
      if (this.#waiters.length === 0) t.unref();
      this.#retryTimer = t;
    });
  }
}
