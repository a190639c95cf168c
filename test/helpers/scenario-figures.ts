/**
 * Runs every family of a scenario generator through `runSimulation` and scores it with
 * examples/scenarios/generate.mjs's `evaluate`: the three figures, pooled over the families.
 */
// @ts-expect-error: a plain ES module without types (examples/scenarios/generate.mjs)
import { evaluate } from '../../examples/scenarios/generate.mjs';
import { parseTrace, runSimulation } from '../../src/abuse/simulator.js';
import type { ConfigSource } from '../../src/config/resolve.js';

export interface ScenarioFigures {
  abusive: number;
  caught: number;
  legit: number;
  touched: number;
  flagged: number;
  p95: number;
  /** Families in which no abusive actor was caught in time. */
  uncaught: string[];
  /** One line per family, for assertion messages. */
  report: string;
}

export async function scenarioFigures(
  families: string[],
  make: (family: string) => { text: string; actors: unknown[] },
  source: () => ConfigSource,
): Promise<ScenarioFigures> {
  const f = { abusive: 0, caught: 0, legit: 0, touched: 0, flagged: 0 };
  const times: number[] = [];
  const lines: string[] = [];
  const uncaught: string[] = [];
  for (const family of families) {
    const { text, actors } = make(family);
    const trace = parseTrace(text);
    const r = await runSimulation({ trace, traceName: family, source: source(), seed: 1 });
    const e = evaluate(
      actors,
      r.report,
      r.decisions.map((l) => JSON.parse(l)),
      trace.requests,
    );
    f.abusive += e.abusive;
    f.caught += e.caught;
    f.legit += e.legit;
    f.touched += e.legitTouched;
    f.flagged += e.flaggedLegit.length;
    times.push(...e.times);
    if (e.caught === 0) uncaught.push(family);
    lines.push(
      `${family}: caught ${e.caught}/${e.abusive}, p95 ${e.p95?.toFixed(1)} s, legit touched ${e.legitTouched}/${e.legit}, flagged ${e.flaggedLegit.length} ${e.missed.join(' ')} ${e.touchedLegit.join(' ')} ${e.flaggedLegit.join(' ')}`,
    );
  }
  times.sort((a, b) => a - b);
  const p95 = times[Math.ceil(times.length * 0.95) - 1]!;
  return { ...f, p95, uncaught, report: lines.join('\n') };
}
