/**
 * Confidential routing, pure: which labels a request must find on its upstream (the pins it matches,
 * merged), and which of a route's candidate upstreams may take it. No I/O; availability is passed in.
 */
import { compileGlob } from '../authz/glob.js';

/** Label name to value, values as strings (`confidential: true` is `{ confidential: 'true' }`). */
export type Labels = Readonly<Record<string, string>>;

export interface PinRule {
  action?: string;
  task?: string;
  tier?: string;
  tenant?: string;
  labels: Labels;
}

/** Who is asking, as far as pins care. */
export interface PinSubject {
  action: string;
  tier: string;
  tenant: string;
}

/**
 * The labels a request must find: `null` when no pin matches. `conflict` names a label two matching
 * pins want with different values: no upstream can carry both, so such a request is always refused.
 */
export interface Requirement {
  labels: Labels;
  conflict: string | null;
}

export interface CompiledPins {
  /** True when there is at least one pin (else `required` always answers null). */
  readonly any: boolean;
  required(s: PinSubject): Requirement | null;
}

/** Compiles the pins once per policy version (action globs included). */
export function compilePins(rules: readonly PinRule[]): CompiledPins {
  const compiled = rules.map((r) => {
    const action = r.action === undefined ? null : compileGlob(r.action);
    const task = r.task === undefined ? null : `tasks.${r.task}`;
    return {
      test: (s: PinSubject) =>
        (action === null || action(s.action)) &&
        (task === null || s.action === task) &&
        (r.tier === undefined || s.tier === r.tier) &&
        (r.tenant === undefined || s.tenant === r.tenant),
      labels: Object.entries(r.labels),
    };
  });
  const evaluate = (s: PinSubject): Requirement | null => {
    let out: Record<string, string> | null = null;
    let conflict: string | null = null;
    for (const c of compiled) {
      if (!c.test(s)) continue;
      out ??= {};
      for (const [k, v] of c.labels) {
        if (out[k] !== undefined && out[k] !== v) conflict ??= k;
        else out[k] = v;
      }
    }
    return out === null ? null : { labels: out, conflict };
  };
  return { any: compiled.length > 0, required: evaluate };
}

/** True when `has` carries every label of `want` with the same value. */
export function carries(has: Labels, want: Labels): boolean {
  for (const k in want) if (has[k] !== want[k]) return false;
  return true;
}

/** One candidate upstream of a route, as routing sees it. */
export interface Candidate {
  name: string;
  labels: Labels;
  /** False while its circuit is open (a call would be refused without trying). */
  available: boolean;
  /** False when it cannot serve the request's endpoint. */
  serves: boolean;
}

/** Why a candidate was passed over: for the audit event and the log, never the caller. */
export type PassedOver = { name: string; why: 'labels' | 'circuit-open' | 'endpoint' };

export type Choice = { ok: true; name: string; passed: PassedOver[] } | { ok: false; passed: PassedOver[] };

/**
 * Picks the first candidate that serves the endpoint, carries the required labels and is available.
 * Without a requirement, a route whose candidates are all unavailable keeps its first one that serves
 * the endpoint (the call then fails as it would have: circuit open); with one, no candidate is a
 * refusal, never another upstream.
 */
export function choose(candidates: readonly Candidate[], req: Requirement | null): Choice {
  const passed: PassedOver[] = [];
  if (req?.conflict) return { ok: false, passed };
  for (const c of candidates) {
    if (!c.serves) passed.push({ name: c.name, why: 'endpoint' });
    else if (req && !carries(c.labels, req.labels)) passed.push({ name: c.name, why: 'labels' });
    else if (!c.available) passed.push({ name: c.name, why: 'circuit-open' });
    else return { ok: true, name: c.name, passed };
  }
  if (!req) {
    const first = candidates.find((c) => c.serves);
    if (first) return { ok: true, name: first.name, passed };
  }
  return { ok: false, passed };
}

/** `confidential=true, region=eu`: how a requirement is written in logs and audit events. */
export function describeLabels(l: Labels): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}
