/**
 * Canonical JSON: the byte-exact text an audit hash is computed over.
 *
 * Same value model as JSON.stringify (toJSON is honoured; undefined, functions and symbols are
 * dropped from objects and become null in arrays; non-finite numbers become null) but object keys
 * are always sorted by UTF-16 code unit, so a value read back from storage (JSON.parse of what was
 * stored) serialises to exactly the same text. BigInts become decimal strings instead of throwing.
 * Throws on cycles.
 */
export function canonicalJson(value: unknown): string {
  const out = write(value, new Set());
  return out === undefined ? 'null' : out;
}

function write(value: unknown, seen: Set<object>): string | undefined {
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
  const obj = value as object;
  if (seen.has(obj)) throw new TypeError('canonicalJson: cyclic value');
  seen.add(obj);
  let out: string;
  if (Array.isArray(obj)) {
    const parts: string[] = [];
    for (const item of obj) parts.push(write(item, seen) ?? 'null');
    out = `[${parts.join(',')}]`;
  } else {
    const rec = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of Object.keys(rec).sort()) {
      const v = write(rec[k], seen);
      if (v !== undefined) parts.push(`${JSON.stringify(k)}:${v}`);
    }
    out = `{${parts.join(',')}}`;
  }
  seen.delete(obj);
  return out;
}
