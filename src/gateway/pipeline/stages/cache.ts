/**
 * Stage `cache`: the exact-match response cache (docs/cache.md). Runs after `authorize` (it needs
 * the principal and the route) and before `limit`, so a hit reserves no upstream capacity: a hit
 * sets `ctx.response` from the store and `forward` is skipped; it counts one request against the
 * caller's limits and no tokens. A cacheable miss goes on as usual and `respond` stores the answer
 * when it has ended whole (`storeWhenEnded`); a streamed answer is stored as the exact byte chunks
 * it was sent as and a hit replays them as a stream. With the cache off this stage is one check.
 */
import { type CacheEntry, entryBytes } from '../../../core/cache/entry.js';
import { cacheability, cacheKey } from '../../../core/cache/rules.js';
import type { Refusal } from '../../../core/errors.js';
import type { UpstreamResponse, Usage } from '../../../core/ports.js';
import type { RequestContext } from '../context.js';
import { logIds } from '../log-ids.js';

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, images: 0 };
const NO_TOKENS = Promise.resolve(NO_USAGE);

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(',') : v);

export function cache(ctx: RequestContext): Refusal | undefined | Promise<Refusal | undefined> {
  // Not async itself: with the cache off (the default) the stage is this one check, without a
  // promise for the runner to await.
  if (!ctx.deps.cache || !ctx.rt.cfg.cache.enabled) return undefined;
  return lookUp(ctx);
}

/** The cache stage when the cache is on: cacheability, then the store. */
async function lookUp(ctx: RequestContext): Promise<Refusal | undefined> {
  const store = ctx.deps.cache!;
  const policy = ctx.rt.cfg.cache;
  const p = ctx.principal!;
  if (policy.tiers && !policy.tiers.includes(p.tier)) return undefined;
  if (policy.tenants && !policy.tenants.includes(p.tenantId)) return undefined;
  const h = ctx.request.headers;
  const c = cacheability(
    {
      endpoint: ctx.endpoint!,
      body: ctx.body!,
      optIn: header(h['x-sluice-cache']),
      cacheControl: header(h['cache-control']),
    },
    policy,
  );
  if (!c.cache) {
    ctx.reply.header('x-sluice-cache', 'bypass');
    return undefined;
  }
  const key = cacheKey({
    tenantId: p.tenantId,
    endpoint: ctx.endpoint!,
    upstream: ctx.upstream!.name,
    upstreamModel: ctx.route!.upstreamModel,
    body: ctx.body!,
    headers: h,
  });
  let entry: CacheEntry | null = null;
  try {
    entry = await store.get(key);
  } catch (err) {
    // A cache outage is a miss, never a failed request.
    ctx.deps.logger.warn({ ...logIds(ctx), err: (err as Error).message }, 'cache read failed');
  }
  const now = ctx.deps.clock.now();
  const ageMs = entry ? now - entry.storedAt : 0;
  // The TTL is checked again here: a policy that shortened it applies to entries already stored.
  const fresh = entry !== null && entry.status === 200 && ageMs >= 0 && ageMs < policy.ttl ? entry : null;
  if (!fresh) {
    ctx.cache = { key, hit: false, ageMs: 0, savedTokens: 0 };
    ctx.reply.header('x-sluice-cache', 'miss');
    ctx.deps.onCache?.(p.tenantId, 'miss', 0, 0);
    return undefined;
  }
  const saved = fresh.usage.inputTokens + fresh.usage.outputTokens;
  ctx.cache = { key, hit: true, ageMs, savedTokens: saved };
  // Limits: one request, no tokens (docs/cache.md); `limit` skips the upstream's capacity for a hit.
  ctx.estimate = { inputTokens: 0, outputTokens: 0, images: 0 };
  ctx.upstreamStarted = now;
  ctx.response = replay(fresh, ageMs);
  ctx.deps.onCache?.(p.tenantId, 'hit', saved, entryBytes(fresh));
  return undefined;
}

/** A stored entry as an upstream answer: a whole body, or its chunks replayed as a stream. */
function replay(e: CacheEntry, ageMs: number): UpstreamResponse {
  return {
    status: e.status,
    headers: {
      'content-type': e.contentType,
      'x-sluice-cache': 'hit',
      age: String(Math.floor(ageMs / 1000)),
    },
    rateHeaders: {},
    body: e.body ?? chunks(e.chunks ?? []),
    usage: NO_TOKENS,
  };
}

async function* chunks(list: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of list) yield c;
}

/**
 * Called by `respond` for a cacheable miss: returns the answer to send, which stores itself once
 * it has ended whole (status 200, not an upstream error mapped into the catalogue, a stream that
 * ran to its end without the client leaving or a shutdown cutting it). The store write is in
 * `ctx.pending`, so `ctx.done` waits for it.
 */
export function storeWhenEnded(ctx: RequestContext, res: UpstreamResponse): UpstreamResponse {
  const state = ctx.cache;
  const store = ctx.deps.cache;
  if (!state || state.hit || !store || res.status !== 200 || res.refusal) return res;
  const { deps, rt } = ctx;
  const put = (entry: CacheEntry) =>
    store.set(state.key, entry, rt.cfg.cache.ttl).then(
      () => deps.onCache?.(ctx.principal!.tenantId, 'stored', 0, entryBytes(entry)),
      (err: Error) => deps.logger.warn({ ...logIds(ctx), err: err.message }, 'cache write failed'),
    );
  const body = res.body;
  if (body instanceof Uint8Array) {
    const contentType = res.headers['content-type'] ?? 'application/json';
    const copy = new Uint8Array(body);
    ctx.pending.push(
      res.usage.then((usage) =>
        put({ status: 200, contentType, storedAt: deps.clock.now(), usage, body: copy }),
      ),
    );
    return res;
  }
  const src: AsyncIterable<Uint8Array> = body;
  const max = rt.cfg.cache.maxEntryBytes;
  const contentType = res.headers['content-type'] ?? 'text/event-stream';
  let release: () => void = () => {};
  ctx.pending.push(
    new Promise<void>((resolve) => {
      release = resolve;
    }),
  );
  let started = false;
  // A stream the client left before it was read never runs tee's finally: release then.
  ctx.reply.raw.once('close', () => {
    if (!started) release();
  });
  async function* tee(): AsyncGenerator<Uint8Array> {
    started = true;
    const kept: Uint8Array[] = [];
    let bytes = 0;
    let whole = false;
    try {
      for await (const c of src) {
        bytes += c.byteLength;
        if (bytes <= max) kept.push(new Uint8Array(c));
        yield c;
      }
      whole = true;
    } finally {
      if (whole && bytes <= max && !ctx.abort?.aborted && !deps.forceEnd?.aborted) {
        void res.usage
          .then((usage) => put({ status: 200, contentType, storedAt: deps.clock.now(), usage, chunks: kept }))
          .finally(release);
      } else release();
    }
  }
  return { ...res, body: tee() };
}
