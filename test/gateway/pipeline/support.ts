/**
 * The gateway in process: `createGateway(deps)` with a memory limit store, the mock upstream, a
 * fake clock, an authenticator that knows one key, and sinks that keep what was audited and
 * recorded. Tests call `app.inject()` (no sockets) or `app.listen({ port: 0 })` for a real client.
 */
import pino from 'pino';
import { parseConfig } from '../../../src/config/load.js';
import { refuse } from '../../../src/core/errors.js';
import type { ApiKeyRecord, AuditEventInput, UsageRecord } from '../../../src/core/ports.js';
import { createGateway } from '../../../src/gateway/app.js';
import { principalOf } from '../../../src/gateway/auth.js';
import type { GatewayDeps } from '../../../src/gateway/pipeline/deps.js';
import { compileRuntime } from '../../../src/gateway/runtime.js';
import { createUpstream } from '../../../src/providers/index.js';
import { MemoryLimitStore } from '../../../src/stores/memory-limit-store.js';
import { accessPolicyFor, limitPolicyFor } from '../../../src/wiring/policy.js';

/** Key ids are 12 characters, secrets 32 (core/keys/api-key.ts). */
export const KEY_ID = 'key000000001';
export const REVOKED_ID = 'key000000002';
export const KEY = `sk-sluice-${KEY_ID}-${'s'.repeat(32)}`;
export const REVOKED = `sk-sluice-${REVOKED_ID}-${'s'.repeat(32)}`;

export const BASE_YAML = `
upstreams:
  - name: mock
    kind: mock
models:
  - match: "*"
    upstream: mock
tiers:
  default:
    scopes: ["*"]
    models: ["*"]
    limits:
      - { id: rpm, per: key, requests: 3, window: 1m }
tasks:
  shout:
    model: mock-chat
    system: "Answer in {{tone}} tone."
    params:
      tone: { type: string, default: loud }
`;

export interface Harness {
  app: ReturnType<typeof createGateway>;
  deps: GatewayDeps;
  audit: AuditEventInput[];
  usage: UsageRecord[];
  clock: { t: number; now(): number };
  /** Resolves when the request with this id has settled (end stages ran or its refusal was audited). */
  settled(requestId: string): Promise<void>;
}

export function harness(opts: { yaml?: string; deps?: Partial<GatewayDeps> } = {}): Harness {
  const cfg = parseConfig(opts.yaml ?? BASE_YAML);
  const clock = { t: 1_700_000_000_000, now: () => clock.t };
  const runtime = compileRuntime(
    cfg,
    7,
    limitPolicyFor(cfg),
    accessPolicyFor(cfg, { geo: null, reputation: null, cedar: null }),
  );
  const record = (id: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
    id,
    hash: 'x',
    tenantId: 'acme',
    tier: 'default',
    createdAt: 0,
    ...extra,
  });
  const good = principalOf(record(KEY_ID));
  const audit: AuditEventInput[] = [];
  const usage: UsageRecord[] = [];
  const waiters = new Map<string, () => void>();
  const done = new Set<string>();
  const upstreams = new Map(cfg.upstreams.map((u) => [u.name, createUpstream(u, { clock })]));
  const deps: GatewayDeps = {
    runtime: () => runtime,
    auth: {
      authenticate: async (presented: string) => {
        if (presented === KEY) return good;
        if (presented === REVOKED) return refuse('SLUICE_KEY_REVOKED', undefined, { keyId: REVOKED_ID });
        return refuse('SLUICE_INVALID_KEY');
      },
    },
    limits: new MemoryLimitStore({ clock }),
    upstreams,
    audit: {
      emit: (e) => void audit.push(e),
      flush: async () => {},
      stats: () => ({ queued: 0, overflowed: 0, written: 0 }),
    },
    usage: { record: (r) => void usage.push(r) },
    clock,
    logger: pino({ level: 'silent' }),
    health: () => ({ ready: true, degraded: [] }),
    onSettled: (id) => {
      done.add(id);
      waiters.get(id)?.();
    },
    ...opts.deps,
  };
  const app = createGateway(deps);
  return {
    app,
    deps,
    audit,
    usage,
    clock,
    settled: (id) =>
      done.has(id) ? Promise.resolve() : new Promise<void>((resolve) => waiters.set(id, resolve)),
  };
}

export const auth = { authorization: `Bearer ${KEY}` };
