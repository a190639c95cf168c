/**
 * Canonical JSON: the byte-exact text an audit hash is computed over.
 *
 * Same value model as JSON.stringify (toJSON is honoured; undefined, functions and symbols are
 * dropped from objects and become null in arrays; non-finite numbers become null) but object keys
 * are always sorted by UTF-16 code unit, so a value read back from storage (JSON.parse of what was
 * stored) serialises to exactly the same text. BigInts become decimal strings instead of throwing.
 * Throws on cycles (reported as nesting deeper than MAX_DEPTH).
 */
export function canonicalJson(value: unknown): string {
  const out = write(value, 0);
  return out === undefined ? 'null' : out;
}

/** Deeper than this is treated as a cycle: a depth count is cheaper than tracking every object seen. */
const MAX_DEPTH = 256;

function write(value: unknown, depth: number): string | undefined {
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  if (depth >= MAX_DEPTH) throw new TypeError('canonicalJson: cyclic or too deeply nested value');
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += write(value[i], depth + 1) ?? 'null';
    }
    return `${out}]`;
  }
  const rec = value as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const k of Object.keys(rec).sort()) {
    const v = write(rec[k], depth + 1);
    if (v === undefined) continue;
    out += first ? `${JSON.stringify(k)}:${v}` : `,${JSON.stringify(k)}:${v}`;
    first = false;
  }
  return `${out}}`;
}
