/**
 * `*`-wildcard patterns (model allow-lists, scopes) compiled once into one matcher per list.
 * `*` matches any run of characters, including none and including dots; every other character is
 * literal and case-sensitive. Exact names, `prefix*` and `*suffix` take fast paths; anything else is
 * folded into a single anchored regular expression.
 */

/** Matches one string against a compiled pattern list; pure, never throws. */
export type StringMatcher = (s: string) => boolean;

const always: StringMatcher = () => true;
const never: StringMatcher = () => false;

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

function globSource(pattern: string): string {
  return pattern.split('*').map(escapeRegExp).join('.*');
}

/** Compiles one pattern. */
export function compileGlob(pattern: string): StringMatcher {
  return compileGlobs([pattern]);
}

/** Compiles a list of patterns into a matcher that is true when any pattern matches. An empty list matches nothing. */
export function compileGlobs(patterns: readonly string[]): StringMatcher {
  if (patterns.length === 0) return never;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  const complex: string[] = [];
  for (const p of patterns) {
    const stars = p.split('*').length - 1;
    // `**` is the same as `*`; collapse so `a**` still takes the prefix path.
    const q = p.replace(/\*+/g, '*');
    if (q === '*') return always;
    if (stars === 0) exact.add(p);
    else if (q.indexOf('*') === q.length - 1) prefixes.push(q.slice(0, -1));
    else if (q.lastIndexOf('*') === 0) suffixes.push(q.slice(1));
    else complex.push(globSource(q));
  }
  const re = complex.length > 0 ? new RegExp(`^(?:${complex.join('|')})$`, 's') : null;
  const hasExact = exact.size > 0;
  // Specialise the common shapes so the hot path has no loops over empty lists.
  if (!re && suffixes.length === 0) {
    if (prefixes.length === 0) return (s) => exact.has(s);
    if (prefixes.length === 1 && !hasExact) {
      const pre = prefixes[0]!;
      return (s) => s.startsWith(pre);
    }
  }
  return (s) => {
    if (hasExact && exact.has(s)) return true;
    for (let i = 0; i < prefixes.length; i++) if (s.startsWith(prefixes[i]!)) return true;
    for (let i = 0; i < suffixes.length; i++) if (s.endsWith(suffixes[i]!)) return true;
    return re?.test(s) === true;
  };
}
