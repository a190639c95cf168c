/**
 * The access policy, compiled once when the config loads, checked on every request.
 *
 * Layers: tier -> tenant override -> project override (config, then the project record) -> key override
 * (config `keys.<id>`) -> key record -> token. Each layer can only narrow: an action is granted when
 * every layer that sets scopes grants it, a model is allowed when every layer that sets models allows it.
 * Context rules (IP allow/deny, reputation lists, countries, hours) of every layer all apply; a rule set
 * with `mode: shadow` never refuses but reports what it would have refused.
 *
 * Pure: no clock, disk or network. Time is `req.now`, the country is resolved by the caller
 * (src/auth/geo.ts), reputation lists are looked up through the injected `ReputationLookup`.
 */
import type { SluiceConfig } from '../../config/schema.js';
import { type ErrorCode, type Refusal, refuse } from '../errors.js';
import { knownActions, taskAction } from './actions.js';
import { CidrError, type CidrMatcher, compileCidrs, type ParsedIp, parseIp } from './cidr.js';
import { compileGlobs, type StringMatcher } from './glob.js';
import { compileScopes, isValidScope } from './scopes.js';

/**
 * Who is calling, as authentication resolved it. Treated as an immutable value: the compiled form is
 * cached per key id and reused while `version` (or, without a version, the identity of the list arrays)
 * and tier/tenant/project stay the same.
 */
export interface Principal {
  keyId: string;
  tenantId: string;
  projectId: string | null;
  tier: string;
  /** Key record scopes; null = whatever the layers above allow. */
  scopes: readonly string[] | null;
  /** Key record model globs; null = whatever the layers above allow. */
  models: readonly string[] | null;
  allowIps: readonly string[] | null;
  denyIps: readonly string[] | null;
  /** True when the presented token was minted with a fresh second factor. */
  stepUp: boolean;
  /** Scopes narrowed by a JWT (`scope` claim); absent/null for plain API keys. */
  tokenScopes?: readonly string[] | null;
  /** Scopes and models of the project record in the control store, if any. */
  projectScopes?: readonly string[] | null;
  projectModels?: readonly string[] | null;
  /** Key record's dpop setting. */
  dpop?: 'required' | 'optional' | null;
  /** Changes whenever the key record changes (updatedAt or a counter); lets the compiled form be reused. */
  version?: number | string | null;
  /** Scopes and models an active exception adds on top of every layer (core/exceptions); a token's own narrowing still applies. */
  exceptionGrant?: { scopes: StringMatcher; models: StringMatcher } | null;
}

/** One request to decide. `ip` is the client address (after `clientIp`); `now` is ms since the epoch. */
export interface AuthzRequest {
  action: string;
  model: string | null;
  ip: string | null;
  country: string | null;
  now: number;
}

/** What a shadow-mode rule set would have refused: logged and counted, never enforced. */
export interface ShadowDenial {
  code: ErrorCode;
  /** Config path of the rule set, e.g. `tiers.free.rules`. */
  rule: string;
  reason: RuleReason;
}

export type RuleReason = 'ip.deny' | 'ip.allow' | 'reputation' | 'country' | 'hours';

/** Reputation lists by name (src/auth/reputation.ts implements it). Must be fast and never throw. */
export interface ReputationLookup {
  listed(name: string, ip: string | ParsedIp): boolean;
}

/**
 * The compiled policy. `authorize` returns null to allow or a Refusal (never throws):
 * - SLUICE_IP_DENIED / SLUICE_GEO_DENIED / SLUICE_TIME_DENIED: a context rule refused (`internal` names the rule set);
 * - SLUICE_SCOPE_DENIED: detail names the missing scope (the action);
 * - SLUICE_MODEL_DENIED: detail names the refused model, i.e. the caller's own request, nothing else;
 * - SLUICE_STEP_UP_REQUIRED: the action needs a token minted with a second factor (RFC 9470 header attached);
 * - SLUICE_POLICY_DENIED: the principal's tier does not exist in this policy (fail closed).
 * Shadow-mode denials seen before the decision are pushed onto `shadow` when given.
 */
export interface AccessPolicy {
  authorize(principal: Principal, req: AuthzRequest, shadow?: ShadowDenial[]): Refusal | null;
  /** `authorize` that also returns the shadow denials. Allocates; prefer `authorize` on the hot path. */
  decide(principal: Principal, req: AuthzRequest): { refusal: Refusal | null; shadow: ShadowDenial[] };
  /** Whether the principal may use `model` at all (for filtering `GET /v1/models`). */
  modelAllowed(principal: Principal, model: string): boolean;
  /** Whether `action` is granted by every scope layer (no context rules, no step-up). */
  actionAllowed(principal: Principal, action: string): boolean;
  stepUpRequired(action: string): boolean;
  /** True when the tier or the key record says `dpop: required`. */
  dpopRequired(principal: Pick<Principal, 'tier' | 'dpop'>): boolean;
  /** Drops the compiled form of one key (call on revocation or update when `version` is not used). */
  forget(keyId: string): void;
}

export interface AccessPolicyIssue {
  path: string;
  message: string;
}

/** The policy cannot be compiled; `issues` name each mistake by config path. */
export class AccessPolicyError extends Error {
  constructor(readonly issues: AccessPolicyIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
    this.name = 'AccessPolicyError';
  }
}

export interface AccessPolicyDeps {
  /** Required when any rule names a reputation list. */
  reputation?: ReputationLookup;
  /** Compiled principals kept (one per key id); default 100 000. */
  maxCachedKeys?: number;
}

// ---------------------------------------------------------------------------------------------
// Context rules
// ---------------------------------------------------------------------------------------------

type RulesConfig = NonNullable<SluiceConfig['tiers'][string]['rules']>;

interface CompiledRules {
  source: string;
  shadow: boolean;
  deny: CidrMatcher | null;
  allow: CidrMatcher | null;
  countriesAllow: ReadonlySet<string> | null;
  countriesDeny: ReadonlySet<string> | null;
  reputation: readonly string[] | null;
  hours: CompiledHours | null;
  needsIp: boolean;
}

interface CompiledHours {
  /** Bit d set = weekday d allowed (0 = Sunday). */
  days: number;
  from: number;
  to: number;
  offset: (now: number) => number;
}

const REASON_CODE: Record<RuleReason, ErrorCode> = {
  'ip.deny': 'SLUICE_IP_DENIED',
  'ip.allow': 'SLUICE_IP_DENIED',
  reputation: 'SLUICE_IP_DENIED',
  country: 'SLUICE_GEO_DENIED',
  hours: 'SLUICE_TIME_DENIED',
};

const DAY_INDEX = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 } as const;

function parseClock(s: string): number | null {
  const h = Number(s.slice(0, 2));
  const m = Number(s.slice(3, 5));
  if (h > 24 || m > 59 || (h === 24 && m !== 0)) return null;
  return h * 60 + m;
}

/** 15 minutes: every UTC offset in use is a multiple of it, so DST transitions fall on these boundaries. */
const OFFSET_BUCKET_MS = 900_000;

/** Offset of `tz` from UTC at `now`, computed with Intl once per 15-minute bucket (Intl costs ~µs). */
function offsetFn(tz: string): (now: number) => number {
  if (tz === 'UTC' || tz === 'Etc/UTC' || tz === 'GMT') return () => 0;
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  let bucket = Number.NaN;
  let offset = 0;
  return (now) => {
    const b = Math.floor(now / OFFSET_BUCKET_MS);
    if (b !== bucket) {
      const t = b * OFFSET_BUCKET_MS;
      const f: Record<string, number> = {};
      for (const part of fmt.formatToParts(t)) if (part.type !== 'literal') f[part.type] = Number(part.value);
      offset = Date.UTC(f.year!, f.month! - 1, f.day!, f.hour!, f.minute!, f.second!) - t;
      bucket = b;
    }
    return offset;
  };
}

/**
 * Inside the window? `from < to`: [from, to) on an allowed day. `from > to` wraps midnight
 * (22:00-06:00) and the day that counts is the day the window opened. `from == to`: all day.
 */
function inHours(h: CompiledHours, now: number): boolean {
  const local = now + h.offset(now);
  const minute = Math.floor(local / 60_000);
  const m = ((minute % 1440) + 1440) % 1440;
  let day = (((Math.floor(minute / 1440) + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday
  if (h.from < h.to) {
    if (m < h.from || m >= h.to) return false;
  } else if (h.from > h.to) {
    if (m < h.from && m >= h.to) return false;
    if (m < h.to) day = (day + 6) % 7;
  }
  return (h.days & (1 << day)) !== 0;
}

function compileRules(
  rules: RulesConfig | undefined,
  source: string,
  cfg: SluiceConfig,
  issues: AccessPolicyIssue[],
): CompiledRules | null {
  if (!rules) return null;
  const cidrs = (list: string[] | undefined, path: string): CidrMatcher | null => {
    if (!list || list.length === 0) return null;
    try {
      return compileCidrs(list);
    } catch (e) {
      issues.push({ path, message: e instanceof CidrError ? e.message : String(e) });
      return null;
    }
  };
  const countries = (list: string[] | undefined, path: string): Set<string> | null => {
    if (!list || list.length === 0) return null;
    if (!cfg.geo)
      issues.push({ path, message: 'country rules need a geo database (geo: { database: path.mmdb })' });
    for (const c of list)
      if (!/^[A-Za-z]{2}$/.test(c)) issues.push({ path, message: `"${c}" is not an ISO 3166 country code` });
    return new Set(list.map((c) => c.toUpperCase()));
  };
  let hours: CompiledHours | null = null;
  if (rules.hours) {
    const from = parseClock(rules.hours.from);
    const to = parseClock(rules.hours.to);
    if (from === null || to === null)
      issues.push({ path: `${source}.hours`, message: 'from/to must be HH:MM between 00:00 and 24:00' });
    let offset: (now: number) => number = () => 0;
    try {
      offset = offsetFn(rules.hours.tz);
    } catch {
      issues.push({ path: `${source}.hours.tz`, message: `unknown time zone "${rules.hours.tz}"` });
    }
    const days = rules.hours.days ?? Object.keys(DAY_INDEX);
    let mask = 0;
    for (const d of days) mask |= 1 << DAY_INDEX[d as keyof typeof DAY_INDEX];
    hours = { days: mask, from: from ?? 0, to: to ?? 0, offset };
  }
  const reputation = rules.reputation && rules.reputation.length > 0 ? rules.reputation : null;
  for (const name of reputation ?? []) {
    if (!cfg.reputation[name])
      issues.push({ path: `${source}.reputation`, message: `no reputation list named "${name}"` });
  }
  const out: CompiledRules = {
    source,
    shadow: rules.mode === 'shadow',
    deny: cidrs(rules.deny, `${source}.deny`),
    allow: cidrs(rules.allow, `${source}.allow`),
    countriesAllow: countries(rules.countries?.allow, `${source}.countries.allow`),
    countriesDeny: countries(rules.countries?.deny, `${source}.countries.deny`),
    reputation,
    hours,
    needsIp: false,
  };
  out.needsIp = out.deny !== null || out.allow !== null || out.reputation !== null;
  return out;
}

/** Rule set from the key record's own lists (always enforced). Lenient: records are validated on write. */
function recordRules(p: Principal): CompiledRules | null {
  const hasAllow = p.allowIps !== null && p.allowIps.length > 0;
  const hasDeny = p.denyIps !== null && p.denyIps.length > 0;
  if (!hasAllow && !hasDeny) return null;
  return {
    source: `key ${p.keyId}`,
    shadow: false,
    // An allow list whose entries are all invalid compiles to an empty set: it refuses everyone.
    allow: hasAllow ? compileCidrs(p.allowIps!, { lenient: true }) : null,
    deny: hasDeny ? compileCidrs(p.denyIps!, { lenient: true }) : null,
    countriesAllow: null,
    countriesDeny: null,
    reputation: null,
    hours: null,
    needsIp: true,
  };
}

function evalRules(
  r: CompiledRules,
  ip: ParsedIp | null,
  req: AuthzRequest,
  reputation: ReputationLookup | undefined,
): RuleReason | null {
  if (r.needsIp) {
    // No usable address: allow-lists and reputation fail closed, deny-lists cannot match.
    if (r.deny !== null && ip !== null && r.deny.hasParsed(ip)) return 'ip.deny';
    if (r.allow !== null && (ip === null || !r.allow.hasParsed(ip))) return 'ip.allow';
    if (r.reputation !== null) {
      if (ip === null || reputation === undefined) return 'reputation';
      for (let i = 0; i < r.reputation.length; i++)
        if (reputation.listed(r.reputation[i]!, ip)) return 'reputation';
    }
  }
  if (r.countriesDeny !== null && req.country !== null && r.countriesDeny.has(req.country)) return 'country';
  if (r.countriesAllow !== null && (req.country === null || !r.countriesAllow.has(req.country)))
    return 'country';
  if (r.hours !== null && !inHours(r.hours, req.now)) return 'hours';
  return null;
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

interface Layer {
  scopes: StringMatcher | null;
  models: StringMatcher | null;
  rules: CompiledRules | null;
  dpopRequired: boolean;
}

interface CompiledPrincipal {
  // Identity of what it was compiled from.
  tier: string;
  tenantId: string;
  projectId: string | null;
  version: number | string | null;
  refs: readonly (readonly string[] | null | undefined)[];
  // What it decides with.
  unknownTier: boolean;
  scopes: StringMatcher[];
  models: StringMatcher[];
  rules: CompiledRules[];
  needsIp: boolean;
}

const LIST_KEYS = ['scopes', 'models', 'allowIps', 'denyIps', 'projectScopes', 'projectModels'] as const;

function stepUpHeader(): Record<string, string> {
  return {
    'www-authenticate':
      'Bearer error="insufficient_user_authentication", error_description="A token minted with a fresh second factor is required"',
  };
}

/**
 * Compiles the access part of a config. Throws AccessPolicyError listing every problem (invalid CIDR,
 * unknown reputation list, country rules without a geo database, unknown time zone, malformed scope,
 * unknown action in `actions`, reputation rules without a lookup).
 */
export function compileAccessPolicy(cfg: SluiceConfig, deps: AccessPolicyDeps = {}): AccessPolicy {
  const issues: AccessPolicyIssue[] = [];
  const reputation = deps.reputation;
  const maxCached = deps.maxCachedKeys ?? 100_000;

  const scopeList = (list: string[] | undefined, path: string): StringMatcher | null => {
    if (!list) return null;
    for (const s of list) if (!isValidScope(s)) issues.push({ path, message: `"${s}" is not a scope` });
    return compileScopes(list);
  };
  const layer = (
    o: { scopes?: string[]; models?: string[]; rules?: RulesConfig; dpop?: string } | undefined,
    path: string,
  ): Layer | null =>
    o
      ? {
          scopes: scopeList(o.scopes, `${path}.scopes`),
          models: o.models ? compileGlobs(o.models) : null,
          rules: compileRules(o.rules, `${path}.rules`, cfg, issues),
          dpopRequired: o.dpop === 'required',
        }
      : null;
  const layers = (rec: Record<string, any>, kind: string): Map<string, Layer> =>
    new Map(Object.entries(rec).map(([id, o]) => [id, layer(o, `${kind}.${id}`)!]));

  const tiers = layers(cfg.tiers, 'tiers');
  const tenants = layers(cfg.tenants, 'tenants');
  const projects = layers(cfg.projects, 'projects');
  const keys = layers(cfg.keys, 'keys');

  const actions = new Set(knownActions(Object.keys(cfg.tasks)));
  const stepUp = new Set<string>();
  for (const [action, a] of Object.entries(cfg.actions)) {
    if (!actions.has(action))
      issues.push({ path: `actions.${action}`, message: `unknown action "${action}"` });
    if (a.stepUp) stepUp.add(action);
  }
  for (const [name, t] of Object.entries(cfg.tasks)) if (t.stepUp) stepUp.add(taskAction(name));

  const usesReputation = [
    ...tiers.values(),
    ...tenants.values(),
    ...projects.values(),
    ...keys.values(),
  ].some((l) => l.rules?.reputation);
  if (usesReputation && !reputation) {
    issues.push({
      path: 'reputation',
      message: 'rules name reputation lists but no reputation lookup was provided',
    });
  }
  if (issues.length > 0) throw new AccessPolicyError(issues);

  // ------- per-key compiled forms, cached by key id -------
  const cache = new Map<string, CompiledPrincipal>();
  const tokenScopeCache = new WeakMap<readonly string[], StringMatcher>();

  const build = (p: Principal): CompiledPrincipal => {
    const tier = tiers.get(p.tier);
    const chain = [
      tier,
      tenants.get(p.tenantId),
      p.projectId != null ? projects.get(p.projectId) : undefined,
      keys.get(p.keyId),
    ].filter((l): l is Layer => l !== undefined);
    const scopes = chain.map((l) => l.scopes).filter((m): m is StringMatcher => m !== null);
    const models = chain.map((l) => l.models).filter((m): m is StringMatcher => m !== null);
    if (p.projectScopes) scopes.push(compileScopes(p.projectScopes));
    if (p.projectModels) models.push(compileGlobs(p.projectModels));
    if (p.scopes) scopes.push(compileScopes(p.scopes));
    if (p.models) models.push(compileGlobs(p.models));
    const rules = chain.map((l) => l.rules).filter((r): r is CompiledRules => r !== null);
    const rec = recordRules(p);
    if (rec) rules.push(rec);
    return {
      tier: p.tier,
      tenantId: p.tenantId,
      projectId: p.projectId ?? null,
      version: p.version ?? null,
      refs: LIST_KEYS.map((k) => p[k]),
      unknownTier: tier === undefined,
      scopes,
      models,
      rules,
      needsIp: rules.some((r) => r.needsIp),
    };
  };

  const fresh = (c: CompiledPrincipal, p: Principal): boolean => {
    if (c.tier !== p.tier || c.tenantId !== p.tenantId || c.projectId !== (p.projectId ?? null)) return false;
    if (p.version !== undefined && p.version !== null) return c.version === p.version;
    for (let i = 0; i < LIST_KEYS.length; i++) if (c.refs[i] !== p[LIST_KEYS[i]!]) return false;
    return true;
  };

  const compiled = (p: Principal): CompiledPrincipal => {
    const hit = cache.get(p.keyId);
    if (hit !== undefined && fresh(hit, p)) return hit;
    const c = build(p);
    if (hit === undefined && cache.size >= maxCached) {
      // FIFO eviction: the oldest compiled key goes; it is rebuilt on its next request (µs).
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(p.keyId, c);
    return c;
  };

  const tokenScopes = (list: readonly string[]): StringMatcher => {
    let m = tokenScopeCache.get(list);
    if (m === undefined) {
      m = compileScopes(list);
      tokenScopeCache.set(list, m);
    }
    return m;
  };

  const scopeOk = (c: CompiledPrincipal, p: Principal, action: string): boolean => {
    const s = c.scopes;
    for (let i = 0; i < s.length; i++)
      if (!s[i]!(action)) {
        if (p.exceptionGrant?.scopes(action)) break;
        return false;
      }
    if (p.tokenScopes != null && !tokenScopes(p.tokenScopes)(action)) return false;
    return true;
  };

  const modelOk = (c: CompiledPrincipal, model: string, p?: Principal): boolean => {
    const m = c.models;
    for (let i = 0; i < m.length; i++) if (!m[i]!(model)) return p?.exceptionGrant?.models(model) === true;
    return true;
  };

  const authorize = (p: Principal, req: AuthzRequest, shadow?: ShadowDenial[]): Refusal | null => {
    const c = compiled(p);
    if (c.unknownTier)
      return refuse('SLUICE_POLICY_DENIED', undefined, { internal: `unknown tier "${p.tier}"` });
    if (c.rules.length > 0) {
      const ip = c.needsIp && req.ip !== null ? parseIp(req.ip) : null;
      for (let i = 0; i < c.rules.length; i++) {
        const r = c.rules[i]!;
        const reason = evalRules(r, ip, req, reputation);
        if (reason === null) continue;
        if (r.shadow) {
          shadow?.push({ code: REASON_CODE[reason], rule: r.source, reason });
          continue;
        }
        return refuse(REASON_CODE[reason], undefined, { internal: `${r.source}: ${reason}` });
      }
    }
    if (!scopeOk(c, p, req.action)) return refuse('SLUICE_SCOPE_DENIED', `missing scope "${req.action}"`);
    if (req.model !== null && !modelOk(c, req.model, p)) {
      // Only the caller's own requested name is echoed (truncated); never the patterns it was checked against.
      const shown = req.model.length > 200 ? `${req.model.slice(0, 200)}...` : req.model;
      return refuse('SLUICE_MODEL_DENIED', `"${shown}"`, { param: 'model' });
    }
    if (stepUp.size > 0 && !p.stepUp && stepUp.has(req.action)) {
      return refuse('SLUICE_STEP_UP_REQUIRED', undefined, { headers: stepUpHeader() });
    }
    return null;
  };

  return {
    authorize,
    decide(p, req) {
      const shadow: ShadowDenial[] = [];
      return { refusal: authorize(p, req, shadow), shadow };
    },
    modelAllowed(p, model) {
      const c = compiled(p);
      return !c.unknownTier && modelOk(c, model, p);
    },
    actionAllowed(p, action) {
      const c = compiled(p);
      return !c.unknownTier && scopeOk(c, p, action);
    },
    stepUpRequired: (action) => stepUp.has(action),
    dpopRequired: (p) => p.dpop === 'required' || tiers.get(p.tier)?.dpopRequired === true,
    forget: (keyId) => {
      cache.delete(keyId);
    },
  };
}

/** Config check: the problems `compileAccessPolicy` would throw for, without needing the reputation files. */
export function checkAccessPolicy(cfg: SluiceConfig): AccessPolicyIssue[] {
  try {
    compileAccessPolicy(cfg, { reputation: { listed: () => false } });
    return [];
  } catch (e) {
    if (e instanceof AccessPolicyError) return e.issues;
    throw e;
  }
}
