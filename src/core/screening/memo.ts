/**
 * A bounded memo of what the detectors found in a text, for texts that come back: a chat resends
 * its whole history every turn, agents resend the same system prompt and tool results, RAG
 * pipelines the same documents. The detectors are pure functions of the text (and, for PII, of
 * the kinds asked for), so a text seen before gets the same findings without being scanned again.
 *
 * Exact by construction: entries live in a `Map` keyed by the text itself, so a lookup compares
 * the whole string (the hash only picks the bucket); two texts that differ in one character never
 * share an entry. Policy is not part of the key: what the memo holds are the detectors' raw
 * results (score, spans), and thresholds and actions are applied to them afresh on every request.
 *
 * Bounded by entries and by the characters of the texts it keeps; least recently used entries go
 * first. Texts shorter than `minChars` are not kept (too varied to come back). Holds no clock
 * and does no I/O; the owner (the `screenInput` stage) keeps one per process.
 */
import type { Finding } from './findings.js';
import type { InjectionModel, InjectionScore } from './prompt-injection.js';

/** What the detectors found in one text; a field is set once that detector has run on it. */
export interface TextFindings {
  /** The classifier's score, and the model that gave it. */
  injection?: { model: InjectionModel; score: InjectionScore };
  secrets?: Finding[];
  /** PII findings for the kinds in `piiKinds` (comma-joined, as asked). */
  pii?: { kinds: string; findings: Finding[] };
}

export interface ScreeningMemoOptions {
  /** Most texts kept (default 1024). */
  maxEntries?: number;
  /** Most characters kept over all texts (default 2^21, about 4 MiB of UTF-16). */
  maxChars?: number;
  /** Shortest text kept (default 16 characters). */
  minChars?: number;
}

export class ScreeningMemo {
  readonly maxEntries: number;
  readonly maxChars: number;
  readonly minChars: number;
  private readonly entries = new Map<string, TextFindings>();
  private chars = 0;
  /** Lookups that found an entry / that created one. */
  hits = 0;
  misses = 0;

  constructor(opts: ScreeningMemoOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 1024;
    this.maxChars = opts.maxChars ?? 1 << 21;
    // Even a short text costs a few µs to scan (every detector's fixed work) and a lookup far less;
    // below 16 characters ("hi", "thanks") texts are too varied to come back usefully.
    this.minChars = opts.minChars ?? 16;
  }

  /** Texts kept now. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The entry for `text` (most recently used from now on), created empty when there was none; the
   * caller fills in what it computes. Undefined for texts too short or too long to keep.
   */
  entry(text: string): TextFindings | undefined {
    if (text.length < this.minChars || text.length > this.maxChars) return undefined;
    const e = this.entries.get(text);
    if (e) {
      this.hits++;
      this.entries.delete(text);
      this.entries.set(text, e);
      return e;
    }
    this.misses++;
    const fresh: TextFindings = {};
    this.entries.set(text, fresh);
    this.chars += text.length;
    for (const old of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries && this.chars <= this.maxChars) break;
      this.entries.delete(old);
      this.chars -= old.length;
    }
    return fresh;
  }

  clear(): void {
    this.entries.clear();
    this.chars = 0;
  }
}
