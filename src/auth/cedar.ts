/**
 * Optional Cedar policies (`policies: { cedar: policies.cedar }`) for rules the built-in matcher
 * cannot express. Cedar is an extra gate: a request must pass the built-in policy AND Cedar; since Cedar
 * denies by default, a policy file normally starts with a broad `permit` and adds `forbid`s.
 *
 * Vocabulary (no namespace), validated against `cedarSchema()` when the file loads:
 *   principal  Key::"<keyId>"   in Tier::"<tier>", Project::"<projectId>", Tenant::"<tenantId>"
 *              attributes: tenant, tier (String), project (String, optional)
 *   action     Action::"chat.create", ..., Action::"models.list", Action::"tasks.<name>"
 *   resource   Model::"<model>" (built-in actions), Task::"<name>" (task actions)
 *   context    ip (ipaddr, optional), country (String, optional), endpoint (String), tokenEstimate (Long),
 *              time { hour, minute, weekday ("mon".."sun") } in UTC
 *
 * A Cedar call costs ~100-300 µs, so decisions are cached in a bounded LRU keyed on the distinct input;
 * a cache hit never calls Cedar. The key only includes the context attributes the policy text reads,
 * so e.g. a varying token estimate does not defeat the cache unless a policy looks at it.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { SluiceConfig } from '../config/schema.js';
import { BUILTIN_ACTIONS, MODELS_LIST_ACTION, taskAction } from '../core/authz/actions.js';
import { type Refusal, refuse } from '../core/errors.js';

type CedarModule = typeof import('@cedar-policy/cedar-wasm/nodejs');

let cedarModule: Promise<CedarModule> | null = null;
/** The wasm module is loaded on first use only: deployments without Cedar never pay for it. */
function loadCedar(): Promise<CedarModule> {
  cedarModule ??= import('@cedar-policy/cedar-wasm/nodejs');
  return cedarModule;
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const CONTEXT_ATTRS = ['ip', 'country', 'time', 'endpoint', 'tokenEstimate'] as const;
type ContextAttr = (typeof CONTEXT_ATTRS)[number];

/** One decision to make. */
export interface CedarInput {
  keyId: string;
  tenantId: string;
  projectId: string | null;
  tier: string;
  action: string;
  resource: { type: 'Model' | 'Task'; id: string };
  context: {
    ip: string | null;
    country: string | null;
    /** ms since the epoch; Cedar sees UTC hour, minute and weekday. */
    now: number;
    endpoint: string;
    tokenEstimate: number;
  };
}

/** A Cedar decision. `reasons` are the ids of the determining policies; `errors` are Cedar's messages. */
export interface CedarDecision {
  allow: boolean;
  reasons: readonly string[];
  errors: readonly string[];
}

export interface CedarOptions {
  /** Task names from the config, to declare `tasks.<name>` actions. */
  tasks?: Iterable<string>;
  /** Distinct inputs whose decisions are kept; default 10 000. */
  cacheSize?: number;
}

/** The policy file does not parse or does not validate against the schema. */
export class CedarPolicyError extends Error {
  constructor(readonly errors: string[]) {
    super(`Cedar policies are invalid:\n${errors.map((e) => `  ${e}`).join('\n')}`);
    this.name = 'CedarPolicyError';
  }
}

/** The Cedar schema (human-readable syntax) for a config's tasks. */
export function cedarSchema(tasks: Iterable<string> = []): string {
  const modelActions = BUILTIN_ACTIONS.filter((a) => a !== MODELS_LIST_ACTION);
  const taskActions = [...tasks].map(taskAction);
  const q = (a: string) => JSON.stringify(a);
  return [
    'entity Tenant;',
    'entity Tier;',
    'entity Project in [Tenant];',
    'entity Key in [Tier, Project, Tenant] { tenant: String, tier: String, project?: String };',
    'entity Model;',
    'entity Task;',
    'type RequestContext = {',
    '  ip?: __cedar::ipaddr,',
    '  country?: String,',
    '  endpoint: String,',
    '  tokenEstimate: Long,',
    '  time: { hour: Long, minute: Long, weekday: String },',
    '};',
    `action ${[...modelActions, MODELS_LIST_ACTION].map(q).join(', ')} appliesTo { principal: Key, resource: Model, context: RequestContext };`,
    ...(taskActions.length
      ? [
          `action ${taskActions.map(q).join(', ')} appliesTo { principal: Key, resource: Task, context: RequestContext };`,
        ]
      : []),
    '',
  ].join('\n');
}

/** Which context attributes the policy text reads (all of them if it uses `context` as a whole). */
function contextReads(policies: string): Set<ContextAttr> {
  // Strip comments so a commented-out rule does not count.
  const text = policies.replace(/\/\/[^\n]*/g, '');
  const total = (text.match(/\bcontext\b/g) ?? []).length;
  const attrs = [...text.matchAll(/\bcontext\s*(?:\.\s*|\bhas\s+)(\w+)/g)].map((m) => m[1]!);
  if (attrs.length < total) return new Set(CONTEXT_ATTRS);
  return new Set(CONTEXT_ATTRS.filter((a) => attrs.includes(a)));
}

function messages(errs: { message: string; help?: string | null }[]): string[] {
  return errs.map((e) => (e.help ? `${e.message} (${e.help})` : e.message));
}

/** Problems with `policies` against `schema` (parse errors, then strict validation errors). */
function validationErrors(cedar: CedarModule, policies: string, schema: string): string[] {
  const v = cedar.validate({
    schema,
    policies: { staticPolicies: policies },
    validationSettings: { mode: 'strict' },
  });
  if (v.type === 'failure') return messages(v.errors);
  return v.validationErrors.map((e) => `${e.policyId}: ${messages([e.error])[0]}`);
}

let instances = 0;

/**
 * A loaded, validated Cedar policy set with its decision cache. `decide` never throws: a Cedar
 * failure is a deny whose `errors` say why (fail closed). `calls` counts actual Cedar invocations.
 */
export class CedarAuthorizer {
  /** Actual Cedar evaluations (cache misses). */
  calls = 0;
  hits = 0;
  private readonly cache = new Map<string, CedarDecision>();
  private readonly cacheSize: number;

  private constructor(
    private readonly cedar: CedarModule,
    private readonly policySetId: string,
    private readonly schemaName: string,
    private readonly reads: Set<ContextAttr>,
    cacheSize: number,
  ) {
    this.cacheSize = cacheSize;
  }

  /** Parses and validates `policies` against the schema; throws CedarPolicyError listing every problem. */
  static async fromText(policies: string, opts: CedarOptions = {}): Promise<CedarAuthorizer> {
    const cedar = await loadCedar();
    const schema = cedarSchema(opts.tasks ?? []);
    const errors = validationErrors(cedar, policies, schema);
    if (errors.length > 0) throw new CedarPolicyError(errors);
    // Preparsed sets live in the wasm module's memory under a name; one name per loaded instance.
    const n = ++instances;
    const setId = `sluice-policies-${n}`;
    const schemaName = `sluice-schema-${n}`;
    const ps = cedar.preparsePolicySet(setId, { staticPolicies: policies });
    if (ps.type === 'failure') throw new CedarPolicyError(messages(ps.errors));
    const ss = cedar.preparseSchema(schemaName, schema);
    if (ss.type === 'failure') throw new CedarPolicyError(messages(ss.errors));
    return new CedarAuthorizer(cedar, setId, schemaName, contextReads(policies), opts.cacheSize ?? 10_000);
  }

  static async fromFile(path: string, opts: CedarOptions = {}): Promise<CedarAuthorizer> {
    return CedarAuthorizer.fromText(await readFile(path, 'utf8'), opts);
  }

  /** The authorizer a config asks for, or null when it names no Cedar file. Relative paths resolve against `baseDir`. */
  static async fromConfig(cfg: SluiceConfig, baseDir = process.cwd()): Promise<CedarAuthorizer | null> {
    if (!cfg.policies.cedar) return null;
    return CedarAuthorizer.fromFile(resolve(baseDir, cfg.policies.cedar), { tasks: Object.keys(cfg.tasks) });
  }

  decide(input: CedarInput): CedarDecision {
    const key = this.cacheKey(input);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.hits++;
      // Refresh recency: Map order is the LRU order.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const d = this.evaluate(input);
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, d);
    return d;
  }

  /** `decide` as a refusal value: null to allow, SLUICE_POLICY_DENIED otherwise (`internal` names the policies). */
  refusal(input: CedarInput): Refusal | null {
    const d = this.decide(input);
    if (d.allow) return null;
    return refuse('SLUICE_POLICY_DENIED', undefined, {
      internal: `cedar: ${d.reasons.join(',') || 'no permit'}${d.errors.length ? `; ${d.errors.join('; ')}` : ''}`,
    });
  }

  stats(): { calls: number; hits: number; cached: number } {
    return { calls: this.calls, hits: this.hits, cached: this.cache.size };
  }

  private cacheKey(i: CedarInput): string {
    const c = i.context;
    const r = this.reads;
    const minute = Math.floor(c.now / 60_000);
    // NUL cannot appear in ids from the config or the key store, so fields cannot run into each other.
    return [
      i.keyId,
      i.tenantId,
      i.projectId ?? '',
      i.tier,
      i.action,
      i.resource.type,
      i.resource.id,
      r.has('ip') ? (c.ip ?? '') : '',
      r.has('country') ? (c.country ?? '') : '',
      r.has('time') ? minute : '',
      r.has('endpoint') ? c.endpoint : '',
      r.has('tokenEstimate') ? c.tokenEstimate : '',
    ].join('\u0000');
  }

  private evaluate(i: CedarInput): CedarDecision {
    this.calls++;
    const d = new Date(Math.floor(i.context.now / 60_000) * 60_000);
    const context: Record<string, unknown> = {
      endpoint: i.context.endpoint,
      tokenEstimate: Math.max(0, Math.floor(i.context.tokenEstimate)),
      time: { hour: d.getUTCHours(), minute: d.getUTCMinutes(), weekday: WEEKDAYS[d.getUTCDay()] },
    };
    if (i.context.ip !== null) context.ip = { __extn: { fn: 'ip', arg: i.context.ip } };
    if (i.context.country !== null) context.country = i.context.country;
    const parents = [
      { type: 'Tier', id: i.tier },
      { type: 'Tenant', id: i.tenantId },
    ];
    const attrs: Record<string, string> = { tenant: i.tenantId, tier: i.tier };
    const entities: {
      uid: { type: string; id: string };
      attrs: Record<string, string>;
      parents: { type: string; id: string }[];
    }[] = [];
    if (i.projectId !== null) {
      parents.push({ type: 'Project', id: i.projectId });
      attrs.project = i.projectId;
      entities.push({
        uid: { type: 'Project', id: i.projectId },
        attrs: {},
        parents: [{ type: 'Tenant', id: i.tenantId }],
      });
    }
    entities.push({ uid: { type: 'Key', id: i.keyId }, attrs, parents });
    try {
      const a = this.cedar.statefulIsAuthorized({
        principal: { type: 'Key', id: i.keyId },
        action: { type: 'Action', id: i.action },
        resource: { type: i.resource.type, id: i.resource.id },
        context: context as never,
        entities,
        preparsedPolicySetId: this.policySetId,
        preparsedSchemaName: this.schemaName,
        validateRequest: true,
      });
      if (a.type === 'failure')
        return Object.freeze({ allow: false, reasons: [], errors: messages(a.errors) });
      return Object.freeze({
        allow: a.response.decision === 'allow',
        reasons: a.response.diagnostics.reason,
        errors: a.response.diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
      });
    } catch (e) {
      return Object.freeze({
        allow: false,
        reasons: [],
        errors: [e instanceof Error ? e.message : String(e)],
      });
    }
  }
}

/** Config check: the problems in a Cedar policy text (empty when it is valid). */
export async function checkCedarPolicies(policies: string, tasks: Iterable<string> = []): Promise<string[]> {
  return validationErrors(await loadCedar(), policies, cedarSchema(tasks));
}
