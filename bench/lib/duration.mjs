// `30s`, `1m`, `1h` as in the policy file, in milliseconds (the same grammar as src/config).
export function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(String(s).trim());
  if (!m) throw new Error(`not a duration: ${s}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2]];
  return Math.round(Number(m[1]) * unit);
}
