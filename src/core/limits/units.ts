/**
 * Integer units for limit arithmetic. Every algorithm counts in integers so that decisions are exact
 * (no floating-point drift between the memory store, the Redis script and the property-test models):
 * requests, tokens, images and leases count as themselves; money counts in micro-dollars.
 */
import type { CostKind } from '../ports.js';

/** Micro-dollars: the smallest price step any provider publishes is well above $0.000001. */
export const USD_SCALE = 1_000_000;

/** How many integer units one policy unit of `kind` is worth. */
export function unitScale(kind: CostKind): number {
  return kind === 'usd' ? USD_SCALE : 1;
}

/**
 * A cost in integer units, rounded up (a fraction of a token or micro-dollar is charged whole). The
 * 1e-6 slack absorbs binary noise such as 0.1 * 3 * 1e6 = 300000.00000000006. Negative and NaN
 * costs count as 0.
 */
export function costUnits(kind: CostKind, amount: number): number {
  if (!(amount > 0)) return 0;
  if (amount === Number.POSITIVE_INFINITY) return Number.MAX_SAFE_INTEGER;
  return Math.ceil(amount * unitScale(kind) - 1e-6);
}

/** A limit (or burst) in integer units, rounded to the nearest unit. */
export function limitUnits(kind: CostKind, amount: number): number {
  return Math.round(amount * unitScale(kind));
}

/** Back from integer units to policy units (for states, headers and messages). */
export function fromUnits(kind: CostKind, units: number): number {
  return kind === 'usd' ? units / USD_SCALE : units;
}

/**
 * Floor division that stays exact when `x / n` rounds across an integer boundary in binary floating
 * point (possible once `x` nears 2^53). Both arguments are integers, `n > 0`.
 */
export function floorDiv(x: number, n: number): number {
  let q = Math.floor(x / n);
  const r = x - q * n;
  if (r < 0) q -= 1;
  else if (r >= n) q += 1;
  return q;
}

/** Ceiling division for integers, exact in the same way as {@link floorDiv}. */
export function ceilDiv(x: number, n: number): number {
  return -floorDiv(-x, n);
}
