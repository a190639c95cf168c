/**
 * Repeated injection attempts from one key (issue 11's "repeated screening verdicts from one
 * principal"). Content screening (issue 12) reports every request whose prompt-injection score
 * crossed the policy's threshold, and every answer cut for repeating a task's hidden prompt (a
 * canary). One such request is nothing: the classifier is wrong a few times in a hundred, and
 * people ask about injection. A key whose attempts are both many and most of what it sends is
 * flagged; one that keeps at it is quarantined for the capability it uses.
 *
 * Pure: the clock is passed in. O(window) per reported verdict, bounded memory (oldest keys dropped first).
 */
import { capMap, RecentSet, SlotRing } from './window.js';

/** This detector's finding: a `Finding` of detectors.ts (kept apart so the two files import one way). */
export interface InjectionFinding {
  detector: 'injection-attempts';
  category: 'prompt-injection';
  score: number;
  suggest: 'flag' | 'quarantine';
  subject: { keyId: string; tenantId: string };
  capability: string;
  reason: string;
  related: { keys: string[]; ips: string[]; tenants: string[] };
  signals: Record<string, number | string>;
}

/** One screening verdict that counts as an attempt. */
export interface InjectionAttempt {
  keyId: string;
  tenantId: string;
  ip: string;
  /** The action the request used (`chat.create`, ...): the capability a quarantine pauses. */
  action: string;
  /** `injection` (input score over the threshold) or `canary` (an answer leaked a task prompt). */
  kind: 'injection' | 'canary';
  /** True when screening refused the request (it is then never observed as an answered call). */
  refused: boolean;
  /** The injection score, when there is one. */
  score?: number;
  /** A hash of the text that was scored (see ScreeningSignal.textHash); distinct texts are counted. */
  textHash?: number;
  requestId?: string;
}

const SLOT_MS = 10_000;
/** Five minutes of ten-second slots. */
const WINDOW = 30;
const S_ATTEMPT = 0;
const S_CANARY = 1;
const S_REFUSED = 2;
const SERIES = 3;

/**
 * Attempts in five minutes before a flag, and before a quarantine (times the policy's sensitivity).
 * A flag needs 3 (it was 6, then 4): a key probing at one request every 10-20 s with ordinary
 * prompts mixed in took more than 120 s to reach 6 in 2 of 60 generated scenarios (seeds 181-243);
 * probers sending one attempt every 15-25 s, a quarter to 40 % ordinary questions between, reached
 * 4 after 2 minutes or more in 11 of 30 (traffic written without sight of this detector,
 * examples/scenarios/independent-c seeds 1-16; at 3, 5 of 30). The price is flags, never a refusal:
 * a security team red-teaming its own app with a handful of payloads in its QA traffic (4 of 14
 * seeds of independent-b), researchers quoting payloads (1 of 16 of independent-c), and an
 * internal tool whose summaries the classifier scores over its threshold 3 times in 40 s (1 of 16).
 * Requiring half of the key's requests for 3 kept 2 of those 7 flags and lost half the catches.
 */
export const FLAG_ATTEMPTS = 3;
export const QUARANTINE_ATTEMPTS = 20;
/**
 * Distinct attempt texts in five minutes before any action: one text repeated (an application's own
 * system prompt the classifier dislikes, a phrase its end users paste) is not someone trying payloads.
 */
export const DISTINCT_TEXTS = 3;
/**
 * The share of the key's requests that must be attempts: a flag needs about a third (it was half:
 * a prober whose payloads the classifier scores below its threshold one time in three stayed
 * under it), a quarantine 70 %. A support bot whose users paste a payload now and then (3 %) and
 * people asking about injection stay far below either.
 */
export const FLAG_SHARE = 0.34;
export const QUARANTINE_SHARE = 0.7;

interface KeyAttempts {
  ring: SlotRing;
  ips: RecentSet<string>;
  texts: RecentSet<number>;
  samples: string[];
  action: string;
  tenantId: string;
}

/** Attempts (and canaries) over the key's requests in the last `slots` slots, answered or refused. */
function shareOf(ring: SlotRing, now: number, slots: number, attempts: number, answered: number): number {
  return attempts / Math.max(answered + ring.sum(now, S_REFUSED, slots), attempts, 1);
}

export class InjectionAttempts {
  private readonly keys = new Map<string, KeyAttempts>();

  constructor(
    private readonly k = 1,
    private readonly maxKeys = 20_000,
  ) {}

  /**
   * Records one attempt and evaluates the key (30 slots, only for the few requests screening reports). `answered(keyId, slots)` is
   * the key's answered requests over the last `slots` ten-second slots (the detectors' own count;
   * refused attempts are added here, as they never reach it).
   */
  attempt(
    a: InjectionAttempt,
    now: number,
    answered: (keyId: string, slots: number) => number,
  ): InjectionFinding | null {
    let s = this.keys.get(a.keyId);
    if (!s) {
      s = {
        ring: new SlotRing(WINDOW, SLOT_MS, SERIES),
        ips: new RecentSet(64),
        texts: new RecentSet(64),
        samples: [],
        action: a.action,
        tenantId: a.tenantId,
      };
      this.keys.set(a.keyId, s);
      capMap(this.keys, this.maxKeys);
    }
    s.ring.add(now, a.kind === 'canary' ? S_CANARY : S_ATTEMPT, 1);
    if (a.refused) s.ring.add(now, S_REFUSED, 1);
    s.ips.see(a.ip, now);
    // A canary leak is evidence whatever the text; an attempt without a hash counts as its own text.
    s.texts.see(a.kind === 'canary' || a.textHash === undefined ? -1 - s.texts.size : a.textHash, now);
    s.action = a.action;
    if (a.requestId) {
      s.samples.push(a.requestId);
      if (s.samples.length > 10) s.samples.shift();
    }
    return this.evaluate(a.keyId, s, now, answered);
  }

  private evaluate(
    keyId: string,
    s: KeyAttempts,
    now: number,
    answeredIn: (keyId: string, slots: number) => number,
  ): InjectionFinding | null {
    const k = this.k;
    const injections = s.ring.sum(now, S_ATTEMPT, WINDOW);
    const canaries = s.ring.sum(now, S_CANARY, WINDOW);
    // A leaked task prompt is worth three ordinary attempts: the attack worked.
    const attempts = injections + 3 * canaries;
    if (attempts < FLAG_ATTEMPTS * k) return null;
    const share = shareOf(s.ring, now, WINDOW, injections + canaries, answeredIn(keyId, WINDOW));
    // The flag's share counts the key's requests since its first attempt in the window, not over
    // all five minutes: a key that had been busy before it started probing diluted its attempts with
    // that earlier traffic, and reached a third of five minutes only after two minutes or more (a
    // prober at one request in two, 0.2 requests/s, in traffic written without sight of this
    // detector: examples/scenarios/independent). A key whose users paste a payload now and then
    // still has most of its requests between its first attempt and now.
    const cur = Math.floor(now / SLOT_MS);
    let since = 1;
    for (let back = WINDOW - 1; back > 0; back--)
      if (s.ring.at(cur - back, S_ATTEMPT) + s.ring.at(cur - back, S_CANARY) > 0) {
        since = back + 1;
        break;
      }
    const recent =
      since === WINDOW ? share : shareOf(s.ring, now, since, injections + canaries, answeredIn(keyId, since));
    if (recent < FLAG_SHARE) return null;
    if (s.texts.countSeenSince(now - 5 * 60_000) < DISTINCT_TEXTS) return null;
    const refused = s.ring.sum(now, S_REFUSED, WINDOW);
    const requests = Math.max(answeredIn(keyId, WINDOW) + refused, injections + canaries, 1);
    const strong = attempts >= QUARANTINE_ATTEMPTS * k && share >= QUARANTINE_SHARE;
    const parts = [`${injections} of its last ${requests} requests in 5 min were scored as prompt injection`];
    if (canaries > 0) parts.push(`${canaries} answers repeated a task's hidden prompt`);
    return {
      detector: 'injection-attempts',
      category: 'prompt-injection',
      // (on the share the flag was decided on: never under 0.5, whatever the five minutes held)
      score: Math.min(1, 0.5 + attempts / (4 * QUARANTINE_ATTEMPTS * k) + (recent - FLAG_SHARE) / 2),
      suggest: strong ? 'quarantine' : 'flag',
      subject: { keyId, tenantId: s.tenantId },
      capability: s.action,
      reason: parts.join('; '),
      related: { keys: [keyId], ips: s.ips.membersSeenSince(now - 5 * 60_000, 20), tenants: [s.tenantId] },
      signals: {
        injections,
        canaries,
        requests,
        share: Math.round(share * 100) / 100,
        shareSinceFirst: Math.round(recent * 100) / 100,
      },
    };
  }

  /** Recent attempt request ids of a key (evidence for its case). */
  samplesOf(keyId: string): readonly string[] {
    return this.keys.get(keyId)?.samples ?? [];
  }
}
