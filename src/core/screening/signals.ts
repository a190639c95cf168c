/**
 * Screening signals: what screening found on one request, as small values for metrics and for the
 * abuse detectors (kinds, actions and scores, never matched text). The gateway's screening stages
 * pass them to `GatewayDeps.onScreening` (see docs/screening.md): `sluice_screening_total` counts
 * them, and an abuse detector can take them as evidence (a key that keeps sending injections or
 * secrets, an answer cut for leaking a task's prompt).
 */
import type { ScreeningSettings } from './policy.js';
import type { ScreenResult } from './request.js';

export type ScreeningDirection = 'input' | 'output';

export interface ScreeningSignal {
  direction: ScreeningDirection;
  /** `injection`, `secrets`, `pii` (input and output); `deny`, `canary` (output). */
  detector: string;
  /** What was done: `flag`, `redact` or `block` (an output `block` is a cut). */
  action: 'flag' | 'redact' | 'block';
  /** Computed and reported but not acted on (policy `shadow: true`). */
  shadow: boolean;
  /** Kinds found (`openai-key`, `email`, ...); empty for injection. */
  kinds: string[];
  /** The injection score (0..1), for injection signals. */
  score?: number;
  /**
   * For injection signals: a 32-bit hash of the text that crossed the threshold (never the text),
   * so a detector can tell a key that repeats one text (an application's own prompt, a phrase its
   * users paste) from one that tries payload after payload.
   */
  textHash?: number;
}

function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Who sent the request the signals are about (ids only). */
export interface ScreeningEvent {
  requestId: string;
  tenantId: string;
  keyId: string;
  ip: string;
  endpoint: string;
  signals: ScreeningSignal[];
}

/** The signals of an input screening result: one per detector that found something and acted (or would have). */
export function inputSignals(r: ScreenResult): ScreeningSignal[] {
  const out: ScreeningSignal[] = [];
  for (const v of r.verdicts) {
    if (v.action === 'allow') continue;
    if (v.detector === 'injection')
      out.push({
        direction: 'input',
        detector: 'injection',
        action: v.action,
        shadow: v.shadow,
        kinds: [],
        score: v.score,
        ...(v.text !== null && r.texts[v.text] ? { textHash: hash32(r.texts[v.text]!.text) } : {}),
      });
    else
      out.push({
        direction: 'input',
        detector: v.detector,
        action: v.action,
        shadow: v.shadow,
        kinds: [...new Set(v.findings.map((f) => f.kind))],
      });
  }
  return out;
}

/**
 * The signals of output screening, from the `detector:kind` strings it reports and the cut reason
 * (`detector:kind` too) if the answer was cut: one per detector, its action from the policy
 * (`redact` or `block` for secrets and PII; deny words and canaries always cut).
 */
export function outputSignals(
  found: readonly string[],
  cut: string | null,
  settings: ScreeningSettings,
): ScreeningSignal[] {
  const kinds = new Map<string, Set<string>>();
  for (const f of cut ? [...found, cut] : found) {
    const i = f.indexOf(':');
    const detector = i < 0 ? f : f.slice(0, i);
    const set = kinds.get(detector) ?? new Set<string>();
    if (i >= 0 && f.slice(i + 1) !== detector) set.add(f.slice(i + 1));
    kinds.set(detector, set);
  }
  const out: ScreeningSignal[] = [];
  for (const [detector, ks] of kinds) {
    const configured =
      detector === 'secrets' ? settings.output.secrets : detector === 'pii' ? settings.output.pii : 'block';
    const cutHere = cut !== null && cut.split(':')[0] === detector;
    const action = cutHere ? 'block' : configured === 'off' ? 'flag' : configured;
    out.push({ direction: 'output', detector, action, shadow: false, kinds: [...ks] });
  }
  return out;
}
