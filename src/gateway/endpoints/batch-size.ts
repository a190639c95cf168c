/**
 * A batch's declared size, for limits: the number of requests it holds and the summed cost estimate
 * of their bodies (the same cheap upper estimate a single call reserves), and the models they name.
 * OpenAI: the input file's JSONL lines (`{custom_id, method, url, body}`); Anthropic: `requests`.
 */
import type { Runtime } from '../runtime.js';

export interface BatchSize {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  models: string[];
}

/** Largest batch Sluice sizes (OpenAI and Anthropic both stop at 50 000 and 100 000 requests). */
export const MAX_BATCH_REQUESTS = 100_000;

const ENDPOINT_OF_URL: Record<string, string> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  '/v1/embeddings': 'embeddings',
  '/v1/responses': 'responses',
  '/v1/messages': 'messages',
};

function add(size: BatchSize, rt: Runtime, endpoint: string, body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return 'has no body object';
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || !b.model) return 'names no model';
  const e = rt.limits.estimate(endpoint, b);
  size.requests++;
  size.inputTokens += e.inputTokens;
  size.outputTokens += e.outputTokens;
  if (!size.models.includes(b.model) && size.models.length < 100) size.models.push(b.model);
  return undefined;
}

/** The size of an OpenAI batch input file, or a message saying which line is wrong. */
export function openAIBatchSize(jsonl: string, rt: Runtime): BatchSize | string {
  const size: BatchSize = { requests: 0, inputTokens: 0, outputTokens: 0, models: [] };
  let n = 0;
  for (const line of jsonl.split('\n')) {
    n++;
    if (!line.trim()) continue;
    if (size.requests >= MAX_BATCH_REQUESTS) return `more than ${MAX_BATCH_REQUESTS} requests`;
    let r: { url?: unknown; body?: unknown };
    try {
      r = JSON.parse(line);
    } catch {
      return `line ${n} is not JSON`;
    }
    const endpoint = typeof r.url === 'string' ? ENDPOINT_OF_URL[r.url] : undefined;
    if (!endpoint) return `line ${n}: "url" must be one of ${Object.keys(ENDPOINT_OF_URL).join(', ')}`;
    const bad = add(size, rt, endpoint, r.body);
    if (bad) return `line ${n}: "body" ${bad}`;
  }
  if (size.requests === 0) return 'the input file holds no requests';
  return size;
}

/** The size of an Anthropic Message Batch, or a message saying which request is wrong. */
export function anthropicBatchSize(requests: unknown, rt: Runtime): BatchSize | string {
  if (!Array.isArray(requests) || requests.length === 0) return '"requests" must be a non-empty array';
  if (requests.length > MAX_BATCH_REQUESTS) return `more than ${MAX_BATCH_REQUESTS} requests`;
  const size: BatchSize = { requests: 0, inputTokens: 0, outputTokens: 0, models: [] };
  for (let i = 0; i < requests.length; i++) {
    const r = requests[i] as { custom_id?: unknown; params?: unknown } | null;
    if (!r || typeof r.custom_id !== 'string') return `requests[${i}].custom_id must be a string`;
    const bad = add(size, rt, 'messages', r.params);
    if (bad) return `requests[${i}].params ${bad}`;
  }
  return size;
}
