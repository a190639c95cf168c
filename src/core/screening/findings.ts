/** What the span detectors (secrets, PII) report: a kind and a span on the text they were given. */
export interface Finding {
  detector: 'secrets' | 'pii' | 'deny' | 'canary';
  /** `openai-key`, `private-key`, `jwt`, `email`, `card`, ... */
  kind: string;
  /** UTF-16 offsets, `end` exclusive. */
  start: number;
  end: number;
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * `xs.sort(cmp)`, in place, without the allocations of `Array.prototype.sort` (its sort state and
 * work array were a tenth of what screening a 4 kB prompt allocated, for lists of a few findings):
 * an insertion sort, stable like `sort`, so the order is the same for any comparator that is
 * consistent. Long lists (over 32) go to `sort`, which is O(n log n).
 */
export function sortInPlace<T>(xs: T[], cmp: (a: T, b: T) => number): T[] {
  if (xs.length > 32) return xs.sort(cmp);
  for (let i = 1; i < xs.length; i++) {
    const x = xs[i]!;
    let j = i - 1;
    while (j >= 0 && cmp(xs[j]!, x) > 0) {
      xs[j + 1] = xs[j]!;
      j--;
    }
    xs[j + 1] = x;
  }
  return xs;
}

/** Text order of findings (start only; ties keep their order). */
export const byStart = (a: Finding, b: Finding): number => a.start - b.start;
const byStartThenWidest = (a: Finding, b: Finding): number => a.start - b.start || b.end - a.end;

/** Drop findings contained in an earlier, longer one; keep the rest in text order. */
export function dedupeFindings(fs: Finding[]): Finding[] {
  const sorted = sortInPlace(fs.slice(), byStartThenWidest);
  const out: Finding[] = [];
  for (const f of sorted) {
    const last = out[out.length - 1];
    if (last && f.start < last.end) {
      // Overlap: keep the wider span; on a tie the earlier (more specific rule order) wins.
      if (f.end > last.end) last.end = f.end;
      continue;
    }
    out.push({ ...f });
  }
  return out;
}

/** Replace every finding's span with `[REDACTED:<kind>]`. */
export function redact(text: string, findings: readonly Finding[]): string {
  if (findings.length === 0) return text;
  const fs = dedupeFindings(findings as Finding[]);
  let out = '';
  let at = 0;
  for (const f of fs) {
    out += text.slice(at, f.start) + `[REDACTED:${f.kind}]`;
    at = f.end;
  }
  return out + text.slice(at);
}
