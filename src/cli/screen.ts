/**
 * `sluice screen [--config F] [FILE|-] [--redact]`: content screening from the command line, with
 * the same detectors and policy thresholds as the gateway (the top-level `screening:` section).
 *
 * Input: JSON Lines, each `{"text": "..."}` or `{"messages": [...]}` (a chat body's messages).
 * Output: one JSON line per input line, in order:
 *   {"injection":{"score":0.93,"verdict":"block"},"secrets":[{"kind":"openai-key","start":10,"end":61}],"pii":[...]}
 * `verdict` is `allow`, `flag` or `block`; spans are UTF-16 offsets into the text (for messages,
 * each span also names its `message` index). `--redact` adds `"redacted"`. A line that is not
 * valid input gets `{"error": "..."}` and the exit status becomes 1; the rest are still screened.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { resolveConfig } from '../config/resolve.js';
import { redact } from '../core/screening/findings.js';
import { settingsFromConfig } from '../core/screening/policy.js';
import { extractTexts, type ScreenedText, screenTexts } from '../core/screening/request.js';

interface ScreenCliOptions {
  config?: string;
  redact?: boolean;
}

type Span = { kind: string; start: number; end: number; message?: number };

/** Screens one parsed input line; exported for tests. */
export function screenLine(
  input: unknown,
  settings: ReturnType<typeof settingsFromConfig>,
  withRedaction: boolean,
): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return { error: 'each line must be a JSON object with "text" or "messages"' };
  const o = input as Record<string, unknown>;
  let texts: ScreenedText[];
  let isMessages = false;
  if (typeof o.text === 'string')
    texts = [{ path: ['text'], role: typeof o.role === 'string' ? o.role : 'user', text: o.text }];
  else if (Array.isArray(o.messages)) {
    isMessages = true;
    texts = extractTexts('chat', { messages: o.messages });
  } else return { error: 'each line must be a JSON object with "text" or "messages"' };

  const r = screenTexts(texts, o, settings);
  const out: Record<string, unknown> = {};
  const inj = r.verdicts.find((v) => v.detector === 'injection');
  if (inj && inj.detector === 'injection') {
    const verdict = inj.action === 'block' ? 'block' : inj.action === 'flag' ? 'flag' : 'allow';
    out.injection = {
      score: Number(inj.score.toFixed(4)),
      verdict: inj.shadow && verdict !== 'allow' ? 'allow' : verdict,
    };
    if (inj.shadow) (out.injection as Record<string, unknown>).shadow = verdict;
  }
  const messageOf = (t: ScreenedText) => (isMessages ? (t.path[1] as number) : undefined);
  for (const v of r.verdicts) {
    if (v.detector === 'injection') continue;
    out[v.detector] = v.findings.map((f): Span => {
      const span: Span = { kind: f.kind, start: f.start, end: f.end };
      const m = messageOf(texts[f.text]!);
      if (m !== undefined) span.message = m;
      return span;
    });
  }
  out.decision = r.decision;
  if (withRedaction) {
    const all = r.verdicts.flatMap((v) => (v.detector === 'injection' ? [] : v.findings));
    if (isMessages) {
      const msgs = structuredClone(o.messages) as unknown[];
      texts.forEach((t, i) => {
        const fs = all.filter((f) => f.text === i);
        if (fs.length === 0) return;
        let node = { messages: msgs } as Record<string | number, unknown>;
        for (let k = 0; k < t.path.length - 1; k++)
          node = node[t.path[k]!] as Record<string | number, unknown>;
        node[t.path[t.path.length - 1]!] = redact(t.text, fs);
      });
      out.redacted = msgs;
    } else out.redacted = redact(texts[0]!.text, all);
  }
  return out;
}

export function registerScreen(program: Command): void {
  program
    .command('screen [file]')
    .description('screen JSON Lines ({"text"} or {"messages"}) for prompt injection, secrets and PII')
    .option('-c, --config <file>', 'policy file whose `screening:` section sets actions and thresholds')
    .option('--redact', 'also print the text with secrets and PII redacted')
    .action(async (file: string | undefined, opts: ScreenCliOptions) => {
      const settings = settingsFromConfig(resolveConfig({ config: opts.config }).config.screening);
      const input = !file || file === '-' ? process.stdin : createReadStream(file, 'utf8');
      const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
      let bad = 0;
      for await (const line of lines) {
        if (line.trim() === '') continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          bad++;
          process.stdout.write(`${JSON.stringify({ error: 'not valid JSON' })}\n`);
          continue;
        }
        const out = screenLine(parsed, settings, opts.redact === true);
        if ('error' in out) bad++;
        process.stdout.write(`${JSON.stringify(out)}\n`);
      }
      if (bad > 0) process.exitCode = 1;
    });
}
