/**
 * Screening policy: the top-level `screening:` section, overridden field by field by the
 * principal's tier, then tenant, then project, then key (the same order as limits and access
 * rules). Lists (`pii.kinds`, `output.deny`) are replaced, not merged; `injection.roles` is merged
 * key by key. Compiled once per config; resolution is cached per principal.
 */
import type { ScreeningConfig, ScreeningOverride, SluiceConfig } from '../../config/schema.js';

export type ScreeningAction = 'off' | 'flag' | 'redact' | 'block';

/** Resolved settings for one principal: what `screenRequest` and `createOutputScreener` take. */
export interface ScreeningSettings {
  injection: {
    action: 'off' | 'flag' | 'block';
    threshold: number;
    shadow: boolean;
    roles: Record<string, number>;
  };
  secrets: { action: ScreeningAction; shadow: boolean };
  pii: { action: ScreeningAction; kinds: string[]; shadow: boolean };
  output: { secrets: ScreeningAction; pii: ScreeningAction; deny: string[] };
  /** The external classifier (off by default); see `screening.external` in docs/screening.md. */
  external?: ExternalScreening;
}

export interface ExternalScreening {
  action: 'off' | 'flag' | 'block';
  upstream?: string;
  kind: 'moderation' | 'chat';
  model?: string;
  timeoutMs: number;
  onError: 'allow' | 'block';
  categories: string[];
  cacheSize: number;
  cacheTtlMs: number;
}

export const EXTERNAL_OFF: ExternalScreening = {
  action: 'off',
  kind: 'moderation',
  timeoutMs: 1_000,
  onError: 'allow',
  categories: [],
  cacheSize: 10_000,
  cacheTtlMs: 600_000,
};

/**
 * Default per-role injection thresholds, under any configured ones: system and developer prompts are
 * the application's own text, and common ones ("You are a helpful assistant.") read like the
 * role-play that jailbreaks use; a real jailbreak placed there still scores above 0.9.
 * Assistant turns are the model's own earlier answers, sent back with every later turn of a chat,
 * and `input` is text to embed or moderate, which no model takes as instructions: both are full of
 * how-to prose ("open Settings, choose the section and confirm with your password", "follow the
 * prompts") that scored 0.5-0.7 in a traffic generator written without sight of the classifier
 * (examples/scenarios/independent), once per turn or per document. A forged assistant turn or an
 * embedded payload of the classic kind still scores above 0.9 (test/core/screening/system-role.test.ts).
 */
export const DEFAULT_ROLES: Readonly<Record<string, number>> = Object.freeze({
  system: 0.9,
  developer: 0.9,
  assistant: 0.9,
  input: 0.9,
});

/** The defaults: what a config without `screening:` gets. */
export const DEFAULT_SCREENING: ScreeningSettings = {
  injection: { action: 'flag', threshold: 0.5, shadow: false, roles: DEFAULT_ROLES },
  secrets: { action: 'redact', shadow: false },
  pii: { action: 'flag', kinds: ['email', 'phone', 'card', 'iban', 'ssn', 'ip'], shadow: false },
  output: { secrets: 'redact', pii: 'off', deny: [] },
  external: EXTERNAL_OFF,
};

/** Apply one override layer (tier, tenant, project or key) to resolved settings; pure. */
export function applyScreeningOverride(base: ScreeningSettings, o: ScreeningOverride): ScreeningSettings {
  if (!o) return base;
  const def = <T extends object>(x: T | undefined): Partial<T> =>
    Object.fromEntries(Object.entries(x ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    injection: {
      ...base.injection,
      ...def(o.injection),
      roles: { ...base.injection.roles, ...(o.injection?.roles ?? {}) },
    } as ScreeningSettings['injection'],
    secrets: { ...base.secrets, ...def(o.secrets) } as ScreeningSettings['secrets'],
    pii: { ...base.pii, ...def(o.pii) } as ScreeningSettings['pii'],
    output: { ...base.output, ...def(o.output) } as ScreeningSettings['output'],
    external: { ...(base.external ?? EXTERNAL_OFF), ...def(o.external) } as ExternalScreening,
  };
}

export interface ScreeningPrincipal {
  tier: string;
  tenantId: string;
  projectId: string | null;
  keyId: string;
}

export interface ScreeningPolicy {
  /** Settings for a principal: top level, then tier, tenant, project, key overrides. */
  settingsFor(p: ScreeningPrincipal): ScreeningSettings;
  /** The top-level settings (no principal: the CLI, tests). */
  readonly base: ScreeningSettings;
}

/** 10 000 principals: the cache is a convenience, a miss costs a few object spreads. */
const CACHE_SIZE = 10_000;

export function settingsFromConfig(s: ScreeningConfig | undefined): ScreeningSettings {
  if (!s) return DEFAULT_SCREENING;
  return {
    injection: { ...s.injection, roles: { ...DEFAULT_ROLES, ...s.injection.roles } },
    secrets: { ...s.secrets },
    pii: { ...s.pii, kinds: [...s.pii.kinds] },
    output: { ...s.output, deny: [...s.output.deny] },
    external: { ...EXTERNAL_OFF, ...s.external, categories: [...(s.external?.categories ?? [])] },
  };
}

export function compileScreeningPolicy(cfg: SluiceConfig): ScreeningPolicy {
  const base = settingsFromConfig(cfg.screening);
  const cache = new Map<string, ScreeningSettings>();
  // By principal object first: an authenticated key's principal is one cached object, asked three
  // times per request (input, external and output screening); the string key costs a concatenation
  // and a hash each time. Principals are never changed in place.
  const byPrincipal = new WeakMap<ScreeningPrincipal, ScreeningSettings>();
  return {
    base,
    settingsFor(p) {
      const known = byPrincipal.get(p);
      if (known) return known;
      const ck = `${p.tier}\u0000${p.tenantId}\u0000${p.projectId ?? ''}\u0000${p.keyId}`;
      let s = cache.get(ck);
      if (s) {
        byPrincipal.set(p, s);
        return s;
      }
      s = base;
      s = applyScreeningOverride(s, cfg.tiers[p.tier]?.screening);
      s = applyScreeningOverride(s, cfg.tenants[p.tenantId]?.screening);
      if (p.projectId !== null) s = applyScreeningOverride(s, cfg.projects[p.projectId]?.screening);
      s = applyScreeningOverride(s, cfg.keys[p.keyId]?.screening);
      if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      cache.set(ck, s);
      byPrincipal.set(p, s);
      return s;
    },
  };
}

/** The injection threshold for a message role. */
export function thresholdFor(s: ScreeningSettings, role: string): number {
  return s.injection.roles[role] ?? s.injection.threshold;
}
