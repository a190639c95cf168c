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

/** Drop findings contained in an earlier, longer one; keep the rest in text order. */
export function dedupeFindings(fs: Finding[]): Finding[] {
  const sorted = fs.slice().sort((a, b) => a.start - b.start || b.end - a.end);
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
