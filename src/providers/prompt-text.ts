/**
 * The text a request asks a model to read, per endpoint, and a cheap token estimate of it.
 *
 * The mock upstream uses it for its `usage`, and the real providers use it when an upstream
 * reports no usage (a stream cut before its usage event). Estimates are characters / 4 rounded up
 * plus a few tokens of framing per message: close to what OpenAI and Anthropic bill for English
 * text, and O(n) with no tokenizer on the hot path.
 */
import type { Endpoint } from '../core/ports.js';

/** Tokens of framing each chat message costs (role markers), as OpenAI's cookbook counts them. */
const PER_MESSAGE = 4;

/** Characters / 4, rounded up: the usual rule of thumb for English text. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Text of a content value: a string, or an array of parts whose `text` (or nested content) is read. */
function contentText(content: unknown, out: string[]): void {
  if (typeof content === 'string') {
    out.push(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (typeof part === 'string') out.push(part);
    else if (part && typeof part === 'object') {
      const p = part as Record<string, unknown>;
      if (typeof p.text === 'string') out.push(p.text);
      else if (typeof p.input_text === 'string') out.push(p.input_text);
      if (p.content !== undefined) contentText(p.content, out);
    }
  }
}

/** Counts list-of-token-id prompts (`[1, 2, 3]` or `[[1, 2], [3]]`) as their length. */
function tokenIds(v: unknown): number | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  if (typeof v[0] === 'number') return v.length;
  if (Array.isArray(v[0]))
    return v.reduce((n: number, a: unknown) => n + (Array.isArray(a) ? a.length : 0), 0);
  return undefined;
}

/** The prompt of a request as plain text parts, plus how many messages framed it. */
export function promptParts(
  endpoint: Endpoint,
  body: Record<string, unknown>,
): { parts: string[]; messages: number } {
  const parts: string[] = [];
  let messages = 0;
  switch (endpoint) {
    case 'chat':
    case 'messages': {
      if (endpoint === 'messages') contentText(body.system, parts);
      if (Array.isArray(body.messages)) {
        for (const m of body.messages) {
          if (!m || typeof m !== 'object') continue;
          messages++;
          contentText((m as Record<string, unknown>).content, parts);
        }
      }
      break;
    }
    case 'completions':
    case 'embeddings': {
      const v = endpoint === 'completions' ? body.prompt : body.input;
      if (typeof v === 'string') parts.push(v);
      else if (Array.isArray(v)) for (const s of v) if (typeof s === 'string') parts.push(s);
      break;
    }
    case 'images':
      if (typeof body.prompt === 'string') parts.push(body.prompt);
      break;
    case 'responses': {
      if (typeof body.instructions === 'string') parts.push(body.instructions);
      const input = body.input;
      if (typeof input === 'string') parts.push(input);
      else if (Array.isArray(input)) {
        for (const item of input) {
          if (!item || typeof item !== 'object') continue;
          messages++;
          const it = item as Record<string, unknown>;
          contentText(it.content, parts);
          if (typeof it.output === 'string') parts.push(it.output);
        }
      }
      break;
    }
  }
  return { parts, messages };
}

/** Estimated input tokens of a request (never below 1 for a request that has any prompt field). */
export function estimateInputTokens(endpoint: Endpoint, body: Record<string, unknown>): number {
  const ids = tokenIds(
    endpoint === 'completions' ? body.prompt : endpoint === 'embeddings' ? body.input : undefined,
  );
  if (ids !== undefined) return ids;
  const { parts, messages } = promptParts(endpoint, body);
  let chars = 0;
  for (const p of parts) chars += p.length;
  const framing = messages > 0 ? messages * PER_MESSAGE + 3 : 0;
  return Math.max(1, Math.ceil(chars / 4) + framing);
}

/** The text of the last user turn (what a reply would answer), or the whole prompt for single-prompt endpoints. */
export function lastUserText(endpoint: Endpoint, body: Record<string, unknown>): string {
  if (endpoint === 'chat' || endpoint === 'messages' || endpoint === 'responses') {
    const list = endpoint === 'responses' ? body.input : body.messages;
    if (typeof list === 'string') return list;
    if (Array.isArray(list)) {
      for (let i = list.length - 1; i >= 0; i--) {
        const m = list[i] as Record<string, unknown> | null;
        if (!m || typeof m !== 'object') continue;
        if (m.role !== undefined && m.role !== 'user') continue;
        const out: string[] = [];
        contentText(m.content, out);
        if (out.length > 0) return out.join(' ');
      }
    }
    return '';
  }
  return promptParts(endpoint, body).parts.join(' ');
}
