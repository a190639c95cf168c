/**
 * Figures on the second generator written without sight of the detectors
 * (examples/scenarios/independent-b/generate.mjs), with only generous static limits configured.
 * Seed 13 was chosen before it was run, after this session's rules were fixed (docs/abuse.md:
 * results on a second generator written blind). Its legitimate population calls some keys from
 * dozens of networks from the trace's first minute (an edge deployment, a mobile app): before,
 * both were quarantined five minutes in, in every trace. Its abuse is slow (one actor per trace,
 * most caught 60-105 s in), so the catch is asserted where it was measured, not at the 95 %.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types
import { generate } from '../../examples/scenarios/independent-b/generate.mjs';
import { resolveConfig } from '../../src/config/resolve.js';
import { scenarioFigures } from '../helpers/scenario-figures.js';

const SEED = 13;

describe('independent-b scenarios through sluice simulate (generous limits)', () => {
  it('touches no legitimate actor, and catches the volume spike, the campaign and the credential stuffing', async () => {
    const families = ['volume-spike', 'template-campaign', 'credential-stuffing'];
    const f = await scenarioFigures(
      families,
      (family) => generate(family, SEED),
      () => resolveConfig({ config: 'examples/scenarios/policies/generous-limits.yaml' }),
    );
    expect(f.touched, f.report).toBe(0);
    expect(f.uncaught, f.report).toEqual([]);
    expect(f.caught, f.report).toBe(families.length);
    // The evaluation harness, the RAG launch and the product launch are flagged (docs/abuse.md).
    expect(f.flagged / f.legit, f.report).toBeLessThanOrEqual(0.06);
  }, 600_000);
});
