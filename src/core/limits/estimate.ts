/**
 * A cheap upper-ish estimate of a request's token use, made before forwarding. Never tokenizes: a
 * 2 MB prompt must not block the event loop. The reservation is settled later with the upstream's
 * reported usage, so this only needs to be cheap and rarely low.
 *
 * Input: ⌈UTF-8 bytes / 3⌉ over the text of `messages`, `prompt`, `input`, `system`, `instructions`,
 * `suffix`, `tools` and `functions` (BPE tokenizers average ~4.5 bytes a token on English prose and ~3
 * on CJK, so bytes/3 is above the real count there; dense code and accented text run ~2.7 bytes a token
 * and come out up to ~15% low, which settle corrects), plus {@link MESSAGE_OVERHEAD_TOKENS} per message,
 * {@link IMAGE_INPUT_TOKENS} per image part (its base64 bytes are not text), and one per token id when
 * the prompt is given as token arrays.
 *
 * Output: `max_tokens`, `max_completion_tokens` or `max_output_tokens`, else the configured default,
 * times the number of choices (`n`, `best_of`); embeddings and image generation produce no tokens.
 * Images: `n` (default 1) on image generation, else 0.
 */
import { type OutputReserveOptions, outputReservation } from './output-estimate.js';
import type { UsageAmounts } from './plan.js';

/** Per message: role and separators cost a few tokens in every chat format. */
export const MESSAGE_OVERHEAD_TOKENS = 4;
/** Per input image: ~1.6k tokens is the most a 1.15-megapixel image costs on the major providers. */
export const IMAGE_INPUT_TOKENS = 1600;
/** Nesting walked at most; the request parser already refuses deeper bodies. */
const MAX_DEPTH = 64;

export interface EstimateOptions {
  /** Output reserved when the request sets no maximum (cfg.limits.defaultOutputTokens), in `declared` mode. */
  defaultOutputTokens: number;
  /** How output is reserved (output-estimate.ts); without it, the declared maximum. */
  outputReserve?: OutputReserveOptions;
  /** The observed output percentile for this key and model (OutputSketch.estimate), when known. */
  observedOutput?: number;
}

const TEXT_FIELDS = [
  'messages',
  'prompt',
  'input',
  'system',
  'instructions',
  'suffix',
  'tools',
  'functions',
] as const;
const IMAGE_PART_TYPES = new Set(['image_url', 'image', 'input_image']);

interface Tally {
  bytes: number;
  tokens: number;
}

function walk(v: unknown, depth: number, t: Tally): void {
  if (typeof v === 'string') {
    t.bytes += Buffer.byteLength(v, 'utf8');
    return;
  }
  if (typeof v === 'number') {
    // Only reached inside arrays: prompts given as token ids.
    t.tokens += 1;
    return;
  }
  if (v === null || typeof v !== 'object' || depth > MAX_DEPTH) return;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, t);
    return;
  }
  const o = v as Record<string, unknown>;
  if (typeof o.type === 'string' && IMAGE_PART_TYPES.has(o.type)) {
    t.tokens += IMAGE_INPUT_TOKENS;
    return;
  }
  for (const key in o) {
    const x = o[key];
    // Scalars that are not text (ids, flags, numbers outside arrays) are skipped.
    if (typeof x === 'string' || (x !== null && typeof x === 'object')) walk(x, depth + 1, t);
  }
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.ceil(v) : undefined;
}

/** Estimated input tokens of a request body. */
export function estimateInputTokens(body: Record<string, unknown>): number {
  const t: Tally = { bytes: 0, tokens: 0 };
  for (const f of TEXT_FIELDS) {
    const v = body[f];
    if (v === undefined || v === null) continue;
    walk(v, 0, t);
    if ((f === 'messages' || f === 'input') && Array.isArray(v))
      t.tokens += MESSAGE_OVERHEAD_TOKENS * v.length;
  }
  return Math.ceil(t.bytes / 3) + t.tokens;
}

/**
 * The estimate for one request. `endpoint` is the gateway's endpoint name (`chat`, `completions`,
 * `embeddings`, `images`, `responses`, `messages`); unknown names are treated like chat.
 */
export function estimateRequest(
  endpoint: string,
  body: Record<string, unknown>,
  opts: EstimateOptions,
): UsageAmounts {
  const inputTokens = estimateInputTokens(body);
  if (endpoint === 'embeddings') return { inputTokens, outputTokens: 0, images: 0 };
  if (endpoint === 'images') return { inputTokens, outputTokens: 0, images: positiveInt(body.n) ?? 1 };
  const declared =
    positiveInt(body.max_tokens) ??
    positiveInt(body.max_completion_tokens) ??
    positiveInt(body.max_output_tokens);
  const max = opts.outputReserve
    ? outputReservation(declared, opts.defaultOutputTokens, opts.observedOutput, opts.outputReserve)
    : (declared ?? opts.defaultOutputTokens);
  const choices = Math.max(positiveInt(body.n) ?? 1, positiveInt(body.best_of) ?? 1);
  return { inputTokens, outputTokens: max * choices, images: 0 };
}
