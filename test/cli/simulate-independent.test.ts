/**
 * The three figures on traffic written without sight of the detectors
 * (examples/scenarios/independent/generate.mjs, a helper's blind generator), with only generous
 * static limits configured, as the held-out set will be run. Seed 24 was chosen before it was run,
 * after the rules it checks were fixed (docs/abuse.md: results on the independent generator). Its
 * end-user rotation (about 20 new ids a minute, under the floor of 40) is not caught; the rest are.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module without types (examples/scenarios/generate.mjs)
import { evaluate } from '../../examples/scenarios/generate.mjs';
// @ts-expect-error: a plain ES module without types
import { FAMILIES, generate } from '../../examples/scenarios/independent/generate.mjs';
import { parseTrace, runSimulation } from '../../src/abuse/simulator.js';
import { resolveConfig } from '../../src/config/resolve.js';

const SEED = 24;

describe('independent scenarios through sluice simulate (generous limits)', () => {
  it(
    'catches >= 95 % within 120 s at p95 <= 30 s, touches no legitimate actor and flags few',
    async () => {
      let abusive = 0;
      let caught = 0;
      let legit = 0;
      let touched = 0;
      let flagged = 0;
      const times: number[] = [];
      const lines: string[] = [];
      for (const family of FAMILIES as string[]) {
        const { text, actors } = generate(family, SEED);
        const trace = parseTrace(text);
        const r = await runSimulation({
          trace,
          traceName: family,
          source: resolveConfig({ config: 'examples/scenarios/policies/generous-limits.yaml' }),
          seed: 1,
        });
        const e = evaluate(
          actors,
          r.report,
          r.decisions.map((l) => JSON.parse(l)),
          trace.requests,
        );
        abusive += e.abusive;
        caught += e.caught;
        legit += e.legit;
        touched += e.legitTouched;
        flagged += e.flaggedLegit.length;
        times.push(...e.times);
        lines.push(
          `${family}: caught ${e.caught}/${e.abusive}, p95 ${e.p95?.toFixed(1)} s, legit touched ${e.legitTouched}/${e.legit}, flagged ${e.flaggedLegit.length} ${e.missed.join(' ')} ${e.touchedLegit.join(' ')} ${e.flaggedLegit.join(' ')}`,
        );
      }
      times.sort((a, b) => a - b);
      const p95 = times[Math.ceil(times.length * 0.95) - 1]!;
      const report = lines.join('\n');
      expect(caught / abusive, report).toBeGreaterThanOrEqual(0.95);
      expect(p95, report).toBeLessThanOrEqual(30);
      expect(touched / legit, report).toBeLessThanOrEqual(0.01);
      // Before this session's screening and detector changes, 8-9 % of these actors were flagged.
      expect(flagged / legit, report).toBeLessThanOrEqual(0.02);
    },
    30 * 60_000,
  );
});
