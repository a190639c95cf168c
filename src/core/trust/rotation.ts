/**
 * Scheduled key rotation: how old a key's secret may get. Pure: the policy, the secret's issue time
 * and the time are passed in. The policy is the most specific `keys:` block among the key's tenant
 * and tier (a tenant's block replaces its tier's).
 */

export interface RotationPolicy {
  /** Age of the secret at which it must be replaced (ms). */
  maxAge: number;
  /** Age at which the owner is warned (ms); default 80% of maxAge. */
  warnAt?: number;
  /** Issue a new secret to the delivery webhook when the age is reached. */
  autoRotate: boolean;
  /** How long the old secret keeps working after an automatic rotation (ms). */
  grace: number;
  /** Where new secrets and warnings go (signed with `secret`). */
  deliver?: { webhook: string; secret: string };
}

export type RotationState = 'ok' | 'warn' | 'due';

export interface RotationStatus {
  state: RotationState;
  /** Age of the current secret (ms). */
  age: number;
  warnAt: number;
  dueAt: number;
}

/** The first of the blocks given that is set (most specific first). */
export function rotationPolicyFor(...blocks: (RotationPolicy | undefined)[]): RotationPolicy | undefined {
  return blocks.find((b) => b !== undefined);
}

export function warnAge(p: RotationPolicy): number {
  return Math.min(p.warnAt ?? Math.floor(p.maxAge * 0.8), p.maxAge);
}

/** Where a secret issued at `issuedAt` stands at `now`. */
export function rotationStatus(p: RotationPolicy, issuedAt: number, now: number): RotationStatus {
  const age = Math.max(0, now - issuedAt);
  const w = warnAge(p);
  return {
    state: age >= p.maxAge ? 'due' : age >= w ? 'warn' : 'ok',
    age,
    warnAt: issuedAt + w,
    dueAt: issuedAt + p.maxAge,
  };
}
