/**
 * The shape of `sluice.yaml`. Everything an operator can set is declared here, once, with zod;
 * `sluice config schema` exports it as JSON Schema for editors.
 */
import { z } from 'zod';
import { AbuseSchema } from '../abuse/policy.js';

/** `30s`, `1m`, `1h`, `1d`, `500ms`: durations as written in the policy file, in milliseconds. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'ms'];
  return Math.round(n * unit);
}

const duration = (min: number, max: number) =>
  z
    .string()
    .describe('A duration such as 500ms, 30s, 1m, 1h, 1d')
    .transform((s, ctx) => {
      const ms = parseDuration(s);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${s}" is not a duration (use e.g. 30s, 1m, 1h, 1d)` });
        return z.NEVER;
      }
      if (ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message: `"${s}" is out of range (${min}ms..${max}ms)` });
        return z.NEVER;
      }
      return ms;
    });

/** A date or date-time (`2026-06-30`, `2026-06-30T12:00:00Z`) as epoch milliseconds. */
const instant = z
  .union([z.string(), z.date()])
  .describe('A date such as 2026-06-30 or 2026-06-30T12:00:00Z (UTC)')
  .transform((v, ctx) => {
    const ms = v instanceof Date ? v.getTime() : /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a date (use e.g. 2026-06-30)` });
      return z.NEVER;
    }
    return ms;
  });

const listen = (port: number, host: string) =>
  z
    .strictObject({
      port: z.number().int().min(0).max(65535).default(port),
      host: z.string().default(host),
      tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
    })
    .prefault({});

const mode = z.enum(['enforce', 'shadow']).default('enforce');

export const LimitPer = z.enum(['key', 'project', 'tenant', 'tier', 'end-user', 'ip', 'global']);

export const LimitSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'limit ids use letters, digits, _ . -'),
    per: LimitPer.default('key'),
    requests: z.number().int().positive().optional(),
    tokens: z.number().int().positive().optional(),
    inputTokens: z.number().int().positive().optional(),
    outputTokens: z.number().int().positive().optional(),
    images: z.number().int().positive().optional(),
    usd: z.number().positive().optional(),
    concurrent: z.number().int().positive().optional(),
    window: duration(1000, 30 * 86_400_000).optional(),
    burst: z.number().int().min(0).default(0),
    /**
     * Hot-key slices (off by default): each instance may reserve this many requests of the limit at
     * once and admit from them locally (docs/scaling.md). Over-admission at most instances × slice.
     */
    slice: z.number().int().min(2).optional(),
    actions: z.array(z.string()).optional(),
    models: z.array(z.string()).optional(),
    mode,
    /** What to do when the limit store is unreachable. */
    onStoreFailure: z.enum(['open', 'closed', 'local']).optional(),
  })
  .superRefine((l, ctx) => {
    const kinds = (
      ['requests', 'tokens', 'inputTokens', 'outputTokens', 'images', 'usd', 'concurrent'] as const
    ).filter((k) => l[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `limit "${l.id}" must set exactly one of requests, tokens, inputTokens, outputTokens, images, usd, concurrent (found ${kinds.length})`,
      });
    }
    if (l.slice !== undefined && (kinds[0] !== 'requests' || (l.window ?? 0) >= 3_600_000)) {
      ctx.addIssue({
        code: 'custom',
        message: `limit "${l.id}": slice applies to requests limits with a window under 1h only`,
        path: ['slice'],
      });
    }
    if (kinds[0] !== 'concurrent' && l.window === undefined) {
      ctx.addIssue({ code: 'custom', message: `limit "${l.id}" needs a window (e.g. 1m)`, path: ['window'] });
    }
  });

export type LimitConfig = z.infer<typeof LimitSchema>;

const ipRules = z
  .strictObject({
    allow: z.array(z.string()).optional(),
    deny: z.array(z.string()).optional(),
    countries: z
      .strictObject({ allow: z.array(z.string()).optional(), deny: z.array(z.string()).optional() })
      .optional(),
    reputation: z
      .array(z.string())
      .optional()
      .describe('Names of reputation lists (see `reputation`) to refuse'),
    hours: z
      .strictObject({
        days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])).optional(),
        from: z.string().regex(/^\d\d:\d\d$/),
        to: z.string().regex(/^\d\d:\d\d$/),
        tz: z.string().default('UTC'),
      })
      .optional(),
    mode,
  })
  .optional();

/** Content screening (issue 12). Full shape at the top level; a partial one per tier, tenant, project, key. */
const screeningAction = z.enum(['off', 'flag', 'redact', 'block']);
const screeningShape = {
  injection: z.strictObject({
    action: z.enum(['off', 'flag', 'block']).default('flag'),
    /** Classifier score at or above which the action applies (0.5 = the cross-validated operating point). */
    threshold: z.number().min(0).max(1).default(0.5),
    shadow: z.boolean().default(false),
    /**
     * Per-role thresholds (user, system, developer, assistant, tool, document); others use `threshold`.
     * System and developer prompts are the application's own text ("You are a helpful assistant."),
     * so they take 0.9 by default (src/core/screening/policy.ts); a configured `roles` map is merged over that.
     */
    roles: z.record(z.string(), z.number().min(0).max(1)).default({}),
  }),
  secrets: z.strictObject({ action: screeningAction.default('redact'), shadow: z.boolean().default(false) }),
  pii: z.strictObject({
    action: screeningAction.default('flag'),
    kinds: z
      .array(z.enum(['email', 'phone', 'card', 'iban', 'ssn', 'nino', 'ip']))
      .default(['email', 'phone', 'card', 'iban', 'ssn', 'ip']),
    shadow: z.boolean().default(false),
  }),
  /**
   * An external classifier (issue 12 item 4): an OpenAI-moderation-compatible endpoint or a
   * Llama-Guard-style chat model, on an `openai`-kind upstream. Off unless `action` and `upstream` are set.
   */
  external: z.strictObject({
    action: z.enum(['off', 'flag', 'block']).default('off'),
    /** The name of an upstream of kind `openai` (its base URL, credentials and TLS settings). */
    upstream: z.string().min(1).optional(),
    /** `moderation`: POST /moderations; `chat`: a chat completion answering "safe" or "unsafe\nS1,...". */
    kind: z.enum(['moderation', 'chat']).default('moderation'),
    model: z.string().min(1).optional(),
    /** How long a request waits for the classifier before `onError` applies. */
    timeoutMs: z.number().int().min(10).max(60_000).default(1_000),
    /** allow: fail open (the request goes on, audited); block: fail closed (503 SLUICE_SCREENING_UNAVAILABLE). */
    onError: z.enum(['allow', 'block']).default('allow'),
    /** Moderation categories that count (empty: the endpoint's own `flagged`). */
    categories: z.array(z.string().min(1)).default([]),
    /** Verdicts cached by text (exact), this many, for this long. */
    cacheSize: z.number().int().min(0).max(1_000_000).default(10_000),
    cacheTtlMs: z.number().int().min(0).max(86_400_000).default(600_000),
  }),
  output: z.strictObject({
    secrets: screeningAction.default('redact'),
    pii: screeningAction.default('off'),
    /** Words or /regular expressions/ that cut an answer. */
    deny: z.array(z.string()).default([]),
  }),
};
export const ScreeningSchema = z
  .strictObject({
    injection: screeningShape.injection.prefault({}),
    secrets: screeningShape.secrets.prefault({}),
    pii: screeningShape.pii.prefault({}),
    external: screeningShape.external.prefault({}),
    output: screeningShape.output.prefault({}),
  })
  .prefault({});
export type ScreeningConfig = z.infer<typeof ScreeningSchema>;
const partialOf = <T extends z.ZodRawShape>(o: z.ZodObject<T>) =>
  z.strictObject(
    Object.fromEntries(
      Object.entries(o.shape).map(([k, v]) => [
        k,
        // Fields with a default lose it (an override says only what it changes); optional ones stay.
        typeof (v as any).removeDefault === 'function'
          ? (v as any).removeDefault().optional()
          : (v as any).optional(),
      ]),
    ) as {
      [K in keyof T]: z.ZodOptional<z.ZodType<z.output<T[K]>, z.input<T[K]>>>;
    },
  );
export const ScreeningOverrideSchema = z
  .strictObject({
    injection: partialOf(screeningShape.injection).optional(),
    secrets: partialOf(screeningShape.secrets).optional(),
    pii: partialOf(screeningShape.pii).optional(),
    external: partialOf(screeningShape.external).optional(),
    output: partialOf(screeningShape.output).optional(),
  })
  .optional();
export type ScreeningOverride = z.infer<typeof ScreeningOverrideSchema>;

/** Scheduled rotation of API key secrets (docs/trust.md), per tier or tenant. */
export const KeyRotationSchema = z
  .strictObject({
    maxAge: duration(60_000, 3650 * 86_400_000),
    /** Age at which the owner is warned (default 80% of maxAge). */
    warnAt: duration(0, 3650 * 86_400_000).optional(),
    autoRotate: z.boolean().default(false),
    /** How long the old secret keeps working after an automatic rotation. */
    grace: duration(0, 90 * 86_400_000).default(86_400_000),
    /** Delivery webhook: warnings and new secrets, signed x-sluice-signature with `secret`. */
    deliver: z.strictObject({ webhook: z.url(), secret: z.string().min(16) }).optional(),
  })
  .refine((k) => !k.autoRotate || k.deliver !== undefined, {
    message: 'autoRotate needs a delivery webhook (deliver: { webhook, secret })',
    path: ['deliver'],
  })
  .optional();

export const TierSchema = z.strictObject({
  scopes: z.array(z.string()).default(['*']),
  models: z.array(z.string()).default(['*']),
  limits: z.array(LimitSchema).default([]),
  rules: ipRules,
  /** Priority weight for queueing and fair share (higher gets more). */
  weight: z.number().positive().default(1),
  queue: z.strictObject({ maxWait: duration(1, 60_000) }).optional(),
  dpop: z.enum(['required', 'optional']).optional(),
  /** Bounds on request parameters for this tier. */
  maxTokens: z.number().int().positive().optional(),
  maxN: z.number().int().positive().default(8),
  /** `refuse` a larger max_tokens (400), or `clamp` it: forward maxTokens and say so in x-sluice-max-tokens-clamped. */
  maxTokensMode: z.enum(['refuse', 'clamp']).default('refuse'),
  screening: ScreeningOverrideSchema,
  keys: KeyRotationSchema,
});
export type TierConfig = z.infer<typeof TierSchema>;

const overrides = z
  .record(
    z.string(),
    z.strictObject({
      limits: z.array(LimitSchema).optional(),
      scopes: z.array(z.string()).optional(),
      models: z.array(z.string()).optional(),
      rules: ipRules,
      screening: ScreeningOverrideSchema,
      /** Key rotation (read for tenants; replaces the tier's block). */
      keys: KeyRotationSchema,
    }),
  )
  .default({});

/** Earned ceilings (docs/trust.md): rules that move tenants between tiers from their history. */
const PromotionRuleSchema = z.strictObject({
  minAge: duration(0, 3650 * 86_400_000).optional(),
  period: duration(60_000, 365 * 86_400_000).default(30 * 86_400_000),
  minRequests: z.number().int().min(0).optional(),
  minUsd: z.number().min(0).optional(),
  maxRefusedShare: z.number().min(0).max(1).optional(),
  maxFlaggedShare: z.number().min(0).max(1).optional(),
  noOpenCase: z.boolean().default(true),
});
export const PromotionSchema = z
  .strictObject({
    /** How often tenants are evaluated (off the request path). */
    every: duration(1000, 30 * 86_400_000).default(3_600_000),
    /** Tiers from lowest to highest. */
    ladder: z.array(z.string()).min(2),
    maxTier: z.string().optional(),
    /** Hysteresis in time: no move by rule within this long of the last move. */
    minDwell: duration(0, 365 * 86_400_000).default(86_400_000),
    /** Hysteresis in value: a rung is kept until its rule is missed by more than this share. */
    margin: z.number().min(0).max(1).default(0.2),
    onConfirmedCase: z.enum(['lowest', 'one-down']).default('lowest'),
    /** The rule to enter each rung above the first, by tier name. */
    rules: z.record(z.string(), PromotionRuleSchema).default({}),
    /** Operators' webhooks told of every move (signed as alert webhooks are). */
    webhooks: z.array(z.strictObject({ webhook: z.url(), secret: z.string().optional() })).default([]),
  })
  .optional();
export type PromotionConfig = z.infer<typeof PromotionSchema>;

/** Per-upstream timeouts: connect, response headers, and the whole body (streams included). */
const upstreamTimeouts = z
  .strictObject({
    connect: duration(1, 600_000).default(5000),
    headers: duration(1, 600_000).default(60_000),
    body: duration(1, 3_600_000).default(300_000),
  })
  .prefault({});

/** An upstream's own capacity, shared fairly among tenants when demand exceeds it. */
const upstreamCapacity = z
  .strictObject({
    tokensPerMinute: z.number().positive().optional(),
    requestsPerMinute: z.number().positive().optional(),
  })
  .optional();

/**
 * Labels an upstream carries (`confidential: true`, `region: eu`, free-form), matched by
 * `routing.pins`. Values are compared as strings (`true` and `"true"` are the same label).
 */
export const LabelsSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9_./-]{1,64}$/, 'label names use letters, digits, _ . / - (at most 64)'),
    z.union([z.string().max(256), z.boolean(), z.number()]),
  )
  .transform((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, String(v)])));
export type Labels = z.output<typeof LabelsSchema>;

/** A certificate's SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` prints it (colons and case free). */
const fingerprint = z.string().transform((s, ctx) => {
  const hex = s
    .replace(/^sha256[:/]/i, '')
    .replace(/[:\s]/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    ctx.addIssue({ code: 'custom', message: 'a SHA-256 fingerprint is 64 hex digits (colons allowed)' });
    return z.NEVER;
  }
  return hex;
});

/**
 * TLS towards one upstream (docs/confidential-routing.md): a pinned CA, a client certificate (mTLS)
 * and certificate fingerprint pins. Paths are relative to the config file. The key path and the
 * passphrase are never logged, audited or shown by the admin API (write them as `${ENV}`).
 */
export const UpstreamTlsSchema = z
  .strictObject({
    /** PEM file of the CA(s) the upstream's certificate must chain to (replaces the system CAs). */
    ca: z.string().min(1).optional(),
    /** PEM client certificate (chain) presented to the upstream. */
    cert: z.string().min(1).optional(),
    /** PEM private key of `cert`. */
    key: z.string().min(1).optional(),
    passphrase: z.string().optional(),
    /** SHA-256 fingerprints of the upstream's own (leaf) certificate; any other certificate is refused. */
    fingerprints: z.array(fingerprint).min(1).optional(),
    /** Name checked against the certificate (and sent as SNI) instead of the base URL's host. */
    servername: z.string().min(1).optional(),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: 'tls.cert and tls.key go together (a client certificate needs its key)',
  })
  .optional();
export type UpstreamTlsConfig = NonNullable<z.output<typeof UpstreamTlsSchema>>;

export const UpstreamSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    name: z.string(),
    kind: z.literal('openai'),
    baseUrl: z.url(),
    apiKey: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    timeouts: upstreamTimeouts,
    capacity: upstreamCapacity,
    labels: LabelsSchema.optional(),
    tls: UpstreamTlsSchema,
  }),
  z.strictObject({
    name: z.string(),
    kind: z.literal('anthropic'),
    baseUrl: z.url().default('https://api.anthropic.com'),
    apiKey: z.string().optional(),
    version: z.string().default('2023-06-01'),
    headers: z.record(z.string(), z.string()).optional(),
    timeouts: upstreamTimeouts,
    capacity: upstreamCapacity,
    labels: LabelsSchema.optional(),
    tls: UpstreamTlsSchema,
  }),
  z.strictObject({
    name: z.string(),
    kind: z.literal('mock'),
    /** Delay between streamed tokens. */
    tokenDelay: duration(0, 10_000).default(0),
    /** Words in each generated answer. */
    replyWords: z.number().int().min(1).max(10_000).default(12),
    capacity: upstreamCapacity,
    labels: LabelsSchema.optional(),
  }),
]);
export type UpstreamConfig = z.infer<typeof UpstreamSchema>;

export const ModelRouteSchema = z.strictObject({
  match: z.string(),
  upstream: z.string(),
  /** Name to send upstream instead of the caller's. */
  rewrite: z.string().optional(),
  /**
   * Other upstreams serving this model, in order: a request goes to the first candidate (`upstream`,
   * then these) that carries the labels its pins require and whose circuit is not open.
   */
  fallbacks: z.array(z.string()).optional(),
});

/**
 * A routing pin: requests matching every selector it names (action glob, task, tier, tenant) may only
 * go to an upstream carrying all its labels; when none is available they are refused, never rerouted.
 */
export const PinSchema = z
  .strictObject({
    /** Action glob: `chat.create`, `tasks.*`, `embeddings.create`. */
    action: z.string().min(1).optional(),
    /** A task name (`/v1/tasks/:name`; the same as action `tasks.<name>`). */
    task: z.string().min(1).optional(),
    tier: z.string().min(1).optional(),
    tenant: z.string().min(1).optional(),
    labels: LabelsSchema.refine((l) => Object.keys(l).length > 0, 'a pin requires at least one label'),
  })
  .refine((p) => [p.action, p.task, p.tier, p.tenant].some((v) => v !== undefined), {
    message: 'a pin names at least one of action, task, tier, tenant',
  });
export type PinConfig = z.output<typeof PinSchema>;

export const TaskSchema = z.strictObject({
  model: z.string(),
  system: z.string(),
  input: z.strictObject({ maxChars: z.number().int().positive().default(20_000) }).prefault({}),
  params: z
    .record(
      z.string(),
      z.strictObject({
        type: z.enum(['integer', 'number', 'string', 'boolean']),
        min: z.number().optional(),
        max: z.number().optional(),
        enum: z.array(z.string()).optional(),
        default: z.union([z.number(), z.string(), z.boolean()]).optional(),
      }),
    )
    .default({}),
  maxTokens: z.number().int().positive().default(1024),
  stepUp: z.boolean().default(false),
});

export const ConfigSchema = z.strictObject({
  server: listen(7070, '0.0.0.0'),
  admin: listen(7071, '127.0.0.1'),
  storage: z.strictObject({ dataDir: z.string().default('.sluice') }).prefault({}),
  database: z.strictObject({ url: z.string() }).optional(),
  redis: z
    .strictObject({ url: z.string() })
    .optional()
    .describe('Shared Redis for invalidations (pub/sub) and, with limits.store=redis, limits'),
  limits: z
    .strictObject({
      store: z.enum(['memory', 'redis']).default('memory'),
      url: z.string().optional(),
      timeout: duration(1, 10_000).default(50),
      onStoreFailure: z.enum(['open', 'closed', 'local']).default('local'),
      expectedInstances: z.number().int().positive().default(1),
      maxKeys: z.number().int().positive().default(1_000_000),
      defaultOutputTokens: z.number().int().positive().default(4096),
      /** Longer retry waits are sent with `x-should-retry: false` (docs/limits.md, "What clients do"). */
      maxClientRetryWait: duration(0, 86_400_000).default(60_000),
      /** How output tokens are reserved before the answer is known (core/limits/output-estimate.ts). */
      outputReserve: z
        .strictObject({
          mode: z.enum(['estimate', 'declared']).default('estimate'),
          percentile: z.number().gt(0).max(1).default(0.95),
          initial: z.number().int().positive().default(1024),
          minSamples: z.number().int().positive().default(10),
        })
        .prefault({}),
      /** Redis Cluster seed nodes (`redis://host:port`); implies `cluster: true`. */
      urls: z.array(z.string()).min(1).optional(),
      /** `url` (or `urls`) is a Redis Cluster: requests spanning hash slots are reserved per slot. */
      cluster: z.boolean().default(false),
    })
    .prefault({}),
  upstreams: z.array(UpstreamSchema).min(1),
  models: z.array(ModelRouteSchema).min(1),
  /** Confidential routing: which requests only go to upstreams carrying given labels (docs/confidential-routing.md). */
  routing: z.strictObject({ pins: z.array(PinSchema).default([]) }).optional(),
  /** USD per million tokens, and per image, by model glob. */
  prices: z
    .record(
      z.string(),
      z.strictObject({
        input: z.number().min(0).default(0),
        output: z.number().min(0).default(0),
        image: z.number().min(0).default(0),
      }),
    )
    .default({}),
  tiers: z.record(z.string(), TierSchema).refine((t) => Object.keys(t).length > 0, 'at least one tier'),
  tenants: overrides,
  projects: overrides,
  keys: overrides,
  promotion: PromotionSchema,
  tasks: z.record(z.string().regex(/^[a-z0-9_-]+$/), TaskSchema).default({}),
  actions: z.record(z.string(), z.strictObject({ stepUp: z.boolean().default(false) })).default({}),
  trustedProxies: z.array(z.string()).default([]),
  geo: z.strictObject({ database: z.string() }).optional(),
  reputation: z.record(z.string(), z.strictObject({ file: z.string() })).default({}),
  tokens: z
    .strictObject({
      ttl: duration(10_000, 86_400_000).default(900_000),
      alg: z.enum(['EdDSA', 'ES256']).default('EdDSA'),
      rotateEvery: duration(60_000, 365 * 86_400_000).default(7 * 86_400_000),
      issuer: z.string().default('sluice'),
    })
    .prefault({}),
  policies: z.strictObject({ cedar: z.string().optional() }).default({}),
  audit: z
    .strictObject({
      retention: duration(3_600_000, 3650 * 86_400_000).optional(),
      queueSize: z.number().int().positive().default(100_000),
      batchSize: z.number().int().positive().default(500),
      flushEvery: duration(1, 60_000).default(200),
    })
    .prefault({}),
  alerts: z
    .array(
      z.strictObject({
        webhook: z.url(),
        secret: z.string().optional(),
        on: z
          .array(
            z.enum([
              'limit.80',
              'limit.100',
              'degraded',
              'audit.overflow',
              'quarantine',
              'policy.regression',
              'deprecation',
            ]),
          )
          .default(['limit.100', 'degraded', 'audit.overflow']),
      }),
    )
    .default([]),
  hardening: z
    .strictObject({
      maxBodyBytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
      maxJsonDepth: z.number().int().positive().default(64),
      maxArrayLength: z.number().int().positive().default(100_000),
      maxStringLength: z
        .number()
        .int()
        .positive()
        .default(2 * 1024 * 1024),
      requestTimeout: duration(1000, 3_600_000).default(300_000),
      headersTimeout: duration(1000, 600_000).default(10_000),
      maxHeaderBytes: z
        .number()
        .int()
        .positive()
        .default(16 * 1024),
      keepAliveTimeout: duration(100, 600_000).default(72_000),
      maxConnections: z.number().int().positive().default(10_000),
      /** Connections one /24 (IPv4) or /64 (IPv6) may hold; default a quarter of maxConnections. */
      maxConnectionsPerSubnet: z.number().int().positive().optional(),
      /** Bytes per second a request body must average once `minBodyRateAfter` has passed (0: off). */
      minBodyRate: z.number().int().min(0).default(1024),
      minBodyRateAfter: duration(100, 600_000).default(10_000),
      authFailures: z
        .strictObject({
          perIp: z.number().int().positive().default(30),
          window: duration(1000, 86_400_000).default(60_000),
        })
        .prefault({}),
    })
    .prefault({}),
  shutdown: z.strictObject({ deadline: duration(0, 600_000).default(30_000) }).prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  /** Temporary exceptions developers request and operators approve (docs/portal.md). */
  exceptions: z
    .strictObject({
      /** Longest duration a request may ask for or an operator may grant. */
      maxDuration: duration(60_000, 90 * 86_400_000).default(14 * 86_400_000),
      /** An unanswered request expires after this long. */
      pendingTtl: duration(60_000, 30 * 86_400_000).default(7 * 86_400_000),
      /** Approvals above either threshold need the approver's TOTP step-up. */
      stepUpAbove: z
        .strictObject({
          duration: duration(60_000, 90 * 86_400_000).default(3 * 86_400_000),
          /** A granted limit more than this many times the policy's limit of the same id. */
          factor: z.number().positive().default(4),
        })
        .prefault({}),
      /** Webhooks told of every request and decision (signed as alert webhooks are). */
      webhooks: z.array(z.strictObject({ webhook: z.url(), secret: z.string().optional() })).default([]),
    })
    .prefault({}),
  outage: z
    .strictObject({
      /** How long a key verified before a control-store outage is still served during it. */
      keyGrace: duration(0, 86_400_000).default(900_000),
      journal: z
        .strictObject({
          /** Local write-ahead journal of usage rows and audit events (data dir `journal/`). */
          enabled: z.boolean().default(true),
          /** none: durable against a process crash (kill -9); fsync: also against power loss (measured cost: docs/operations.md). */
          sync: z.enum(['fsync', 'none']).default('none'),
          syncDelay: duration(0, 1000).default(2),
          syncBatch: z.number().int().positive().default(256),
        })
        .prefault({}),
    })
    .prefault({}),
  screening: ScreeningSchema,
  /** Abuse detection, quarantine and review (src/abuse/policy.ts; docs/abuse.md). */
  abuse: AbuseSchema,
  cache: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** How long an answer is served from the cache: a duration string (500ms, 30s, 5m, 1h, 1d), in ms once parsed. */
      ttl: duration(1000, 30 * 86_400_000).default(300_000),
      /** Memory store: total bytes held (LRU eviction past it). */
      maxBytes: z
        .number()
        .int()
        .positive()
        .default(64 * 1024 * 1024),
      /** An answer bigger than this (bytes) is not stored. */
      maxEntryBytes: z
        .number()
        .int()
        .positive()
        .default(1024 * 1024),
      store: z.enum(['memory', 'redis']).default('memory'),
      /** Redis for store: redis (else redis.url). */
      url: z.string().optional(),
      prefix: z.string().min(1).default('sluice:cache:'),
      /** Only these tiers / tenants use the cache (absent: all). */
      tiers: z.array(z.string()).optional(),
      tenants: z.array(z.string()).optional(),
      /** Cache requests that declare tools too (default false: tools may have side effects). */
      tools: z.boolean().default(false),
    })
    .prefault({})
    .describe('Exact-match response cache (docs/cache.md)'),
  tracing: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** OTLP/HTTP JSON traces endpoint, e.g. http://collector:4318/v1/traces. */
      endpoint: z.url().optional(),
      /** Headers sent with each export (e.g. an API key of the tracing backend); never logged. */
      headers: z.record(z.string(), z.string()).default({}),
      /** Fraction of requests traced when the caller sent no traceparent (0..1). */
      sampleRatio: z.number().min(0).max(1).default(1),
      batchSize: z.number().int().positive().default(512),
      flushEvery: duration(10, 60_000).default(1000),
      serviceName: z.string().min(1).default('sluice'),
    })
    .prefault({})
    .refine((t) => !t.enabled || t.endpoint !== undefined, {
      message: 'tracing.enabled needs tracing.endpoint',
      path: ['endpoint'],
    })
    .describe('OpenTelemetry traces over OTLP/HTTP JSON (docs/tracing.md)'),
  /** Deprecation timelines: headers before the sunset, 410 SLUICE_SUNSET after (docs/policy-lifecycle.md). */
  deprecations: z
    .array(
      z
        .strictObject({
          match: z
            .strictObject({
              model: z.string().min(1).optional(),
              route: z.string().min(1).optional(),
              action: z.string().min(1).optional(),
              key: z.string().min(1).optional(),
            })
            .refine((m) => Object.values(m).filter((v) => v !== undefined).length === 1, {
              message: 'match names exactly one of model, route, action, key',
            }),
          announced: instant,
          sunset: instant,
          replacement: z.string().optional(),
          link: z.url().optional(),
        })
        .refine((d) => d.announced <= d.sunset, { message: 'announced must not be after sunset' }),
    )
    .default([]),
});

export type SluiceConfig = z.infer<typeof ConfigSchema>;
export type SluiceConfigInput = z.input<typeof ConfigSchema>;

/** With no config file at all: mock upstream for every model, SQLite under ./.sluice, memory limits, one tier. */
export const DEFAULT_CONFIG: SluiceConfigInput = {
  upstreams: [{ name: 'local', kind: 'mock' }],
  models: [{ match: '*', upstream: 'local' }],
  tiers: { default: { scopes: ['*'], models: ['*'], limits: [] } },
};
