/**
 * The limit plan: the policy's limits compiled once into a function from a request's context to the
 * concrete buckets it touches, plus the request's cost in each bucket and the price table.
 *
 * Resolution, for a request with (tier, tenant, project, key, action, model):
 *   1. the tier's `limits`;
 *   2. then `tenants[tenant].limits`, `projects[project].limits`, `keys[key].limits`, in that order:
 *      a limit with the id of one already in the list replaces it, a new id is added;
 *   3. limits whose `actions` / `models` globs do not match the request are dropped (a limit with
 *      `models` does not apply to a request without a model);
 *   4. each limit becomes a bucket whose storage key names its scope (`per`):
 *        key       {t:<tenant>}:<id>:<alg>:k:<key>
 *        project   {t:<tenant>}:<id>:<alg>:p:<project>   (no project: per key instead)
 *        tenant    {t:<tenant>}:<id>:<alg>:t
 *        end-user  {t:<tenant>}:<id>:<alg>:u:<end user> (no end user: per key instead)
 *        tier      {r:<tier>}:<id>:<alg>                 (everyone in the tier)
 *        ip        {i:<ip>}:<id>:<alg>                   (that address, whatever key it uses)
 *        global    {g}:<id>:<alg>                        (everyone)
 *      The `{...}` part is the Redis Cluster hash tag: a request's key, project, tenant and end-user
 *      buckets share one slot. `<alg>` (g, w, l) keeps a limit whose algorithm changes with its
 *      window from reading state of the other shape.
 *
 * Algorithms: `concurrent` → lease (TTL = the limit's `window`, else the request timeout + 60 s);
 * windows under 1 h → GCRA; 1 h and longer → sliding window. A window limit has no separate burst:
 * its burst is added to the limit.
 */
import { createHash } from 'node:crypto';
import type { LimitConfig, SluiceConfig } from '../../config/schema.js';
import { compileGlobs, type StringMatcher } from '../authz/glob.js';
import type { CostKind, LimitAlgorithm, LimitBucket } from '../ports.js';

/** Windows from this length up use sliding-window counters; shorter ones GCRA. */
export const WINDOW_ALGORITHM_FROM_MS = 3_600_000;
/** Added to the request timeout for a lease TTL: a lease must outlive the request it guards. */
export const LEASE_TTL_MARGIN_MS = 60_000;
/** Combinations remembered by `bucketsFor`; beyond this the oldest are forgotten. */
export const PLAN_CACHE_SIZE = 10_000;

/** What `onStoreFailure` says for a bucket (resolved from the limit, else `limits.onStoreFailure`). */
export type StoreFailureMode = 'open' | 'closed' | 'local';

/** A bucket from the plan: a LimitBucket that also says what to do when the store fails. */
export interface PlannedBucket extends LimitBucket {
  onStoreFailure: StoreFailureMode;
}

/** Who is calling and what they ask for: everything that selects and keys limits. */
export interface LimitContext {
  keyId: string;
  tenantId: string;
  projectId: string | null;
  tier: string;
  /** The request's `user` field or `x-sluice-end-user` header. */
  endUser: string | null;
  ip: string;
  action: string;
  model: string | null;
}

/** A request's estimated (or, at settle, actual) consumption. */
export interface CostEstimate {
  inputTokens: number;
  outputTokens: number;
  images: number;
  usd: number;
}

export interface UsageAmounts {
  inputTokens: number;
  outputTokens: number;
  images: number;
}

/** USD per million tokens and per image. */
export interface Price {
  input: number;
  output: number;
  image: number;
}

/**
 * The compiled plan. Immutable; build a new one on a config reload. Arrays it returns are shared
 * between requests and frozen: never mutate them.
 */
export interface LimitPlan {
  /** The buckets a request touches, in policy order. Fast: cached per combination. */
  bucketsFor(ctx: LimitContext): readonly PlannedBucket[];
  /** Cost per bucket, same order: requests 1, tokens in+out, inputTokens, outputTokens, images, usd, concurrent 1. */
  costsFor(buckets: readonly LimitBucket[], est: CostEstimate): number[];
  /** USD for a model and usage, from `prices` (most specific glob wins; unknown model: 0). */
  usdFor(model: string | null, usage: UsageAmounts): number;
  /** The price row that applies to a model, or undefined. */
  priceFor(model: string | null): Price | undefined;
  /** TTL of concurrency leases that set no window. */
  readonly leaseTtlMs: number;
}

interface Template {
  id: string;
  per: LimitConfig['per'];
  kind: CostKind;
  algorithm: LimitAlgorithm;
  alg: string;
  limit: number;
  burst: number;
  windowMs: number;
  shadow: boolean;
  slice: number | undefined;
  onStoreFailure: StoreFailureMode;
  actions: StringMatcher | null;
  models: StringMatcher | null;
}

const KINDS: readonly CostKind[] = [
  'requests',
  'tokens',
  'inputTokens',
  'outputTokens',
  'images',
  'usd',
  'concurrent',
];

function compileTemplate(l: LimitConfig, cfg: SluiceConfig, leaseTtlMs: number): Template {
  const kind = KINDS.find((k) => l[k] !== undefined) ?? 'requests';
  const amount = (l[kind] as number | undefined) ?? 0;
  let algorithm: LimitAlgorithm;
  let windowMs: number;
  let limit = amount;
  let burst = l.burst ?? 0;
  if (kind === 'concurrent') {
    algorithm = 'lease';
    windowMs = l.window ?? leaseTtlMs;
    burst = 0;
  } else {
    windowMs = l.window ?? 60_000;
    if (windowMs < WINDOW_ALGORITHM_FROM_MS) algorithm = 'gcra';
    else {
      algorithm = 'window';
      limit += burst;
      burst = 0;
    }
  }
  return {
    id: l.id,
    per: l.per ?? 'key',
    kind,
    algorithm,
    alg: algorithm === 'gcra' ? 'g' : algorithm === 'window' ? 'w' : 'l',
    limit,
    burst,
    windowMs,
    shadow: l.mode === 'shadow',
    slice: l.slice,
    onStoreFailure: l.onStoreFailure ?? cfg.limits.onStoreFailure,
    actions: l.actions ? compileGlobs(l.actions) : null,
    models: l.models ? compileGlobs(l.models) : null,
  };
}

/** Replace-by-id merge of override limits onto a list. */
function mergeTemplates(
  base: readonly Template[],
  over: readonly Template[] | undefined,
): readonly Template[] {
  if (!over || over.length === 0) return base;
  const out = base.slice();
  for (const t of over) {
    const i = out.findIndex((b) => b.id === t.id);
    if (i >= 0) out[i] = t;
    else out.push(t);
  }
  return out;
}

const SAFE = /^[A-Za-z0-9_.@-]{1,96}$/;

/**
 * A key component that cannot break the key's shape: `{`, `}` and `:` (and anything unusual) are
 * percent-encoded, and long values (end-user ids are caller-chosen) are replaced by a hash.
 */
export function keyPart(s: string): string {
  if (SAFE.test(s)) return s;
  if (s.length > 96) return `h.${createHash('sha256').update(s).digest('hex').slice(0, 32)}`;
  let out = '';
  for (const ch of s) {
    out += /[A-Za-z0-9_.@-]/.test(ch)
      ? ch
      : Array.from(Buffer.from(ch, 'utf8'), (b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
  return out;
}

function bucketKey(t: Template, ctx: LimitContext): string {
  const tag = `{t:${keyPart(ctx.tenantId)}}`;
  const byKey = `${tag}:${t.id}:${t.alg}:k:${keyPart(ctx.keyId)}`;
  switch (t.per) {
    case 'key':
      return byKey;
    case 'project':
      return ctx.projectId === null ? byKey : `${tag}:${t.id}:${t.alg}:p:${keyPart(ctx.projectId)}`;
    case 'tenant':
      return `${tag}:${t.id}:${t.alg}:t`;
    case 'end-user':
      return ctx.endUser === null || ctx.endUser === ''
        ? byKey
        : `${tag}:${t.id}:${t.alg}:u:${keyPart(ctx.endUser)}`;
    case 'tier':
      return `{r:${keyPart(ctx.tier)}}:${t.id}:${t.alg}`;
    case 'ip':
      return `{i:${keyPart(ctx.ip)}}:${t.id}:${t.alg}`;
    case 'global':
      return `{g}:${t.id}:${t.alg}`;
  }
}

function toBucket(t: Template, ctx: LimitContext): PlannedBucket {
  return Object.freeze({
    id: t.id,
    key: bucketKey(t, ctx),
    kind: t.kind,
    algorithm: t.algorithm,
    limit: t.limit,
    burst: t.burst,
    windowMs: t.windowMs,
    shadow: t.shadow,
    per: t.per,
    onStoreFailure: t.onStoreFailure,
    ...(t.slice !== undefined ? { slice: t.slice } : {}),
  });
}

/** Buckets of one (tier, tenant, project, key, action, model): fixed ones built once, per-request ones by template. */
interface CacheEntry {
  /** Every bucket, when none depends on the end user or IP. */
  fixed: readonly PlannedBucket[] | null;
  templates: readonly Template[];
  /** Pre-built bucket per template, or null where it depends on the end user or IP. */
  built: (PlannedBucket | null)[];
}

function priceSpecificity(pattern: string): number {
  // An exact name beats any glob; among globs, more literal characters win.
  return pattern.includes('*') ? pattern.replace(/\*/g, '').length : Number.MAX_SAFE_INTEGER;
}

export function compileLimitPlan(cfg: SluiceConfig): LimitPlan {
  const leaseTtlMs = cfg.hardening.requestTimeout + LEASE_TTL_MARGIN_MS;
  const compileList = (ls: readonly LimitConfig[] | undefined) =>
    ls?.map((l) => compileTemplate(l, cfg, leaseTtlMs));
  const tiers = new Map<string, readonly Template[]>();
  for (const [name, tier] of Object.entries(cfg.tiers)) tiers.set(name, compileList(tier.limits) ?? []);
  const overridesOf = (section: SluiceConfig['tenants']) => {
    const m = new Map<string, readonly Template[]>();
    for (const [name, o] of Object.entries(section))
      if (o.limits && o.limits.length > 0) m.set(name, compileList(o.limits)!);
    return m;
  };
  const tenants = overridesOf(cfg.tenants);
  const projects = overridesOf(cfg.projects);
  const keys = overridesOf(cfg.keys);

  const cache = new Map<string, CacheEntry>();
  const empty: readonly PlannedBucket[] = Object.freeze([]);

  const resolve = (ctx: LimitContext): CacheEntry => {
    let list = tiers.get(ctx.tier) ?? [];
    list = mergeTemplates(list, tenants.get(ctx.tenantId));
    if (ctx.projectId !== null) list = mergeTemplates(list, projects.get(ctx.projectId));
    list = mergeTemplates(list, keys.get(ctx.keyId));
    const templates = list.filter(
      (t) =>
        (t.actions === null || t.actions(ctx.action)) &&
        (t.models === null || (ctx.model !== null && t.models(ctx.model))),
    );
    const perRequest = (t: Template) => t.per === 'ip' || t.per === 'end-user';
    const built = templates.map((t) => (perRequest(t) ? null : toBucket(t, ctx)));
    const fixed = built.every((b) => b !== null) ? Object.freeze(built as PlannedBucket[]) : null;
    return { fixed: templates.length === 0 ? empty : fixed, templates, built };
  };

  const bucketsFor = (ctx: LimitContext): readonly PlannedBucket[] => {
    const ck = `${ctx.tier}\u0000${ctx.tenantId}\u0000${ctx.projectId ?? ''}\u0000${ctx.keyId}\u0000${ctx.action}\u0000${ctx.model ?? '\u0001'}`;
    let entry = cache.get(ck);
    if (!entry) {
      entry = resolve(ctx);
      if (cache.size >= PLAN_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      cache.set(ck, entry);
    }
    if (entry.fixed) return entry.fixed;
    const out: PlannedBucket[] = new Array(entry.templates.length);
    for (let i = 0; i < out.length; i++) out[i] = entry.built[i] ?? toBucket(entry.templates[i]!, ctx);
    return out;
  };

  const priceRows = Object.entries(cfg.prices)
    .map(([pattern, price]) => ({ match: compileGlobs([pattern]), rank: priceSpecificity(pattern), price }))
    .sort((a, b) => b.rank - a.rank);
  const priceCache = new Map<string, Price | undefined>();
  const priceFor = (model: string | null): Price | undefined => {
    if (model === null) return undefined;
    if (priceCache.has(model)) return priceCache.get(model);
    const row = priceRows.find((r) => r.match(model))?.price;
    if (priceCache.size >= PLAN_CACHE_SIZE) priceCache.clear();
    priceCache.set(model, row);
    return row;
  };

  return {
    leaseTtlMs,
    bucketsFor,
    costsFor: costsForBuckets,
    priceFor,
    usdFor(model, usage) {
      const p = priceFor(model);
      if (!p) return 0;
      return (
        (usage.inputTokens * p.input + usage.outputTokens * p.output) / 1_000_000 + usage.images * p.image
      );
    },
  };
}

/** Cost per bucket for an estimate (or actual usage): see {@link LimitPlan.costsFor}. */
export function costsForBuckets(buckets: readonly LimitBucket[], est: CostEstimate): number[] {
  const out: number[] = new Array(buckets.length);
  for (let i = 0; i < buckets.length; i++) {
    switch (buckets[i]!.kind) {
      case 'requests':
      case 'concurrent':
        out[i] = 1;
        break;
      case 'tokens':
        out[i] = est.inputTokens + est.outputTokens;
        break;
      case 'inputTokens':
        out[i] = est.inputTokens;
        break;
      case 'outputTokens':
        out[i] = est.outputTokens;
        break;
      case 'images':
        out[i] = est.images;
        break;
      case 'usd':
        out[i] = est.usd;
        break;
    }
  }
  return out;
}
