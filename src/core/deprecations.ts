/**
 * Deprecation timelines (issue 19): a model, route, action or key is announced as deprecated on one
 * date and retired on another. Compiled once per policy version into Maps, so a request that matches
 * no entry costs a few Map lookups. Pure: the caller passes `now`.
 */

export interface DeprecationEntry {
  match: { model?: string; route?: string; action?: string; key?: string };
  /** Epoch ms: when the deprecation was (or will be) announced. */
  announced: number;
  /** Epoch ms: from this instant on, requests are refused with 410 SLUICE_SUNSET. */
  sunset: number;
  replacement?: string;
  link?: string;
}

export interface DeprecationFacts {
  model: string | null;
  /** The route path (`/v1/chat/completions`). */
  route: string;
  action: string;
  keyId: string | null;
}

export interface Deprecated {
  entry: DeprecationEntry;
  /** What matched, for messages: `model "gpt-3"`. */
  what: string;
}

type Kind = 'model' | 'route' | 'action' | 'key';
const KINDS: Kind[] = ['key', 'model', 'route', 'action'];

function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${esc}$`);
}

export class DeprecationTable {
  private readonly exact = new Map<Kind, Map<string, DeprecationEntry>>();
  private readonly patterns: { kind: Kind; re: RegExp; entry: DeprecationEntry }[] = [];
  readonly size: number;

  constructor(entries: readonly DeprecationEntry[]) {
    this.size = entries.length;
    for (const entry of entries) {
      for (const kind of KINDS) {
        const v = entry.match[kind];
        if (v === undefined) continue;
        if (kind === 'model' && v.includes('*')) this.patterns.push({ kind, re: globToRegExp(v), entry });
        else {
          let m = this.exact.get(kind);
          if (!m) {
            m = new Map();
            this.exact.set(kind, m);
          }
          // The first entry for a name wins (as with model routes).
          if (!m.has(v)) m.set(v, entry);
        }
      }
    }
  }

  /** The entry that applies to a request, if any (key first, then model, route, action). */
  find(f: DeprecationFacts): Deprecated | undefined {
    if (this.size === 0) return undefined;
    const values: Record<Kind, string | null> = {
      key: f.keyId,
      model: f.model,
      route: f.route,
      action: f.action,
    };
    for (const kind of KINDS) {
      const v = values[kind];
      if (v === null) continue;
      const hit = this.exact.get(kind)?.get(v);
      if (hit) return { entry: hit, what: `${kind} "${v}"` };
      if (kind === 'model') {
        for (const p of this.patterns) if (p.re.test(v)) return { entry: p.entry, what: `model "${v}"` };
      }
    }
    return undefined;
  }
}

/** True once the sunset has passed. */
export function isSunset(entry: DeprecationEntry, now: number): boolean {
  return now >= entry.sunset;
}

/**
 * Headers before the sunset: `Deprecation` (RFC 9745, `@<epoch seconds>`), `Sunset` (RFC 8594,
 * HTTP-date) and, with a link, `Link: <link>; rel="deprecation"`. None before the announcement.
 */
export function deprecationHeaders(entry: DeprecationEntry, now: number): Record<string, string> {
  if (now < entry.announced) return {};
  const h: Record<string, string> = {
    deprecation: `@${Math.floor(entry.announced / 1000)}`,
    sunset: new Date(entry.sunset).toUTCString(),
  };
  if (entry.link) h.link = `<${entry.link}>; rel="deprecation"; type="text/html"`;
  return h;
}

/** The public detail of a 410 after the sunset: what was retired, when, and what to use instead. */
export function sunsetDetail(d: Deprecated): string {
  const day = new Date(d.entry.sunset).toISOString().slice(0, 10);
  let s = `${d.what} was retired on ${day}`;
  if (d.entry.replacement) s += `; use "${d.entry.replacement}" instead`;
  if (d.entry.link) s += ` (see ${d.entry.link})`;
  return s;
}

/** A stable name for an entry (what it matches and its sunset day): the notice and metric key. */
export function deprecationKey(entry: DeprecationEntry): string {
  const m = entry.match;
  const what =
    m.key !== undefined
      ? `key:${m.key}`
      : m.model !== undefined
        ? `model:${m.model}`
        : m.route !== undefined
          ? `route:${m.route}`
          : `action:${m.action ?? ''}`;
  return `${what}@${new Date(entry.sunset).toISOString().slice(0, 10)}`;
}
