/**
 * `sluice simulate TRACE.jsonl`: replays a traffic trace through the real gateway pipeline on a
 * virtual clock (docs: ../shared SIMULATION.md, docs/abuse.md). Deterministic: the same trace,
 * config and seed give byte-identical report and decisions.
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { runSimulation, type SimulationResult, scanTrace, TraceError } from '../abuse/simulator.js';
import { ConfigError, parseConfig } from '../config/load.js';
import { type ConfigSource, DEFAULT_SOURCE, resolveConfig } from '../config/resolve.js';
import { CliExit } from './exit.js';

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('replay a JSONL traffic trace through the real pipeline in virtual time')
    .argument('<trace>', 'trace file (JSON Lines)')
    .option('-c, --config <file>', 'policy file (default: the built-in default)')
    .option('-d, --data-dir <dir>', 'data directory (default: a fresh temporary one)')
    .option('--report <file>', 'write the report (JSON) here')
    .option('--decisions <file>', 'write one decision per trace request (JSON Lines) here')
    .option('--seed <n>', 'seed for anything random in the run', '1')
    .action(async (trace: string, o) => {
      let bytes: Buffer;
      try {
        const { readFileSync } = await import('node:fs');
        bytes = readFileSync(trace);
      } catch (err) {
        throw new CliExit(
          `sluice simulate: cannot read ${trace}: ${(err as NodeJS.ErrnoException).code ?? err}`,
          1,
        );
      }
      // Request lines are parsed as the run reaches them (scanTrace): a malformed one stops the run
      // there, with the same exit code and message as a malformed line found before it starts.
      const traceError = (err: unknown) =>
        err instanceof TraceError ? new CliExit(`sluice simulate: ${trace}: ${err.message}`, 1) : err;
      let parsed: ReturnType<typeof scanTrace>;
      try {
        parsed = scanTrace(bytes);
      } catch (err) {
        throw traceError(err);
      }
      let source: ConfigSource;
      try {
        // Only an explicit --config is read: the simulation never picks up ./sluice.yaml by accident.
        source = o.config
          ? resolveConfig({ config: o.config })
          : { file: null, source: DEFAULT_SOURCE, config: parseConfig(DEFAULT_SOURCE, '(built-in default)') };
      } catch (err) {
        if (err instanceof ConfigError) throw new CliExit(`sluice simulate: ${err.message}`, 2);
        throw err;
      }
      const tty = process.stderr.isTTY === true;
      let lastDraw = 0;
      let result: SimulationResult;
      try {
        result = await runSimulation({
          trace: parsed,
          traceName: basename(trace),
          source,
          dataDir: o.dataDir,
          seed: Number.parseInt(o.seed, 10) || 1,
          onProgress: tty
            ? (done, total) => {
                const now = Date.now();
                if (now - lastDraw < 100 && done < total) return;
                lastDraw = now;
                const width = 30;
                const filled = Math.round((done / Math.max(1, total)) * width);
                process.stderr.write(
                  `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} requests`,
                );
                if (done >= total) process.stderr.write('\n');
              }
            : undefined,
        });
      } catch (err) {
        if (tty && lastDraw > 0) process.stderr.write('\n');
        throw traceError(err);
      }
      if (o.report) writeFileSync(o.report, `${JSON.stringify(result.report, null, 2)}\n`);
      if (o.decisions)
        writeFileSync(o.decisions, result.decisions.join('\n') + (result.decisions.length ? '\n' : ''));
      process.stderr.write(`${result.summary}\n`);
    });
}
