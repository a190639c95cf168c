/**
 * Parse and validate: the JSON parser with depth, array, string and UTF-8 checks, and the strict
 * checks of the few fields Sluice itself reads (model, messages, max_tokens, n, stream). Unknown
 * fields pass through untouched.
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import type { SluiceConfig } from '../config/schema.js';
import { type Refusal, refuse } from '../core/errors.js';
import type { Endpoint } from '../core/ports.js';

class BodyError extends Error {
  constructor(
    readonly code: 'SLUICE_JSON_TOO_DEEP' | 'SLUICE_BAD_UTF8' | 'SLUICE_BAD_JSON' | 'SLUICE_BAD_REQUEST',
    message: string,
    /** Appended to the public message (the error handler passes it on). */
    readonly publicDetail?: string,
  ) {
    super(message);
  }
  readonly statusCode = 400;
}

/** Keys that reach an object's prototype when a body is merged or copied downstream. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * True when a parsed body has a `__proto__`, `constructor` or `prototype` key at any depth
 * (prototype pollution in whatever merges the body later: an SDK, a plugin, the upstream).
 * Iterative, like `checkShape`.
 */
export function hasForbiddenKey(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (typeof v[i] === 'object') stack.push(v[i]);
      continue;
    }
    for (const k of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(k)) return true;
      const x = (v as Record<string, unknown>)[k];
      if (typeof x === 'object') stack.push(x);
    }
  }
  return false;
}

/** Cheap pre-check on the raw text: a forbidden key must spell one of these words, or use a `\u` escape. */
const FORBIDDEN_TEXT = /__proto__|constructor|prototype|\\u/;

/** Walks containers only; strings are checked by length. Iterative: a hostile depth cannot overflow the stack. */
export function checkShape(
  value: unknown,
  limits: { maxDepth: number; maxArray: number; maxString: number },
): boolean {
  // Iterative (a hostile body may be deeper than the call stack), with values and depths in two
  // parallel arrays and strings checked where they are found: no allocation per node.
  if (typeof value === 'string') return value.length <= limits.maxString;
  const values: unknown[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.maxDepth) return false;
    if (Array.isArray(v)) {
      if (v.length > limits.maxArray) return false;
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (typeof x === 'string') {
          if (x.length > limits.maxString) return false;
        } else if (typeof x === 'object' && x !== null) {
          values.push(x);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const k in v) {
        if (k.length > limits.maxString) return false;
        const x = (v as Record<string, unknown>)[k];
        if (typeof x === 'string') {
          if (x.length > limits.maxString) return false;
        } else if (typeof x === 'object' && x !== null) {
          values.push(x);
          depths.push(depth + 1);
        }
      }
    }
  }
  return true;
}

export function hardenJsonParser(app: FastifyInstance, h: SluiceConfig['hardening']): void {
  const limits = { maxDepth: h.maxJsonDepth, maxArray: h.maxArrayLength, maxString: h.maxStringLength };
  // JSON only: everything else is a 415 from the catalogue.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body: Buffer, done) => {
    if (body.length === 0) return done(new BodyError('SLUICE_BAD_JSON', 'empty body'), undefined);
    if (!isUtf8(body)) return done(new BodyError('SLUICE_BAD_UTF8', 'invalid utf-8'), undefined);
    const text = body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(new BodyError('SLUICE_BAD_JSON', 'invalid json'), undefined);
    }
    if (!checkShape(parsed, limits))
      return done(new BodyError('SLUICE_JSON_TOO_DEEP', 'too deep'), undefined);
    if (FORBIDDEN_TEXT.test(text) && hasForbiddenKey(parsed)) {
      return done(
        new BodyError(
          'SLUICE_BAD_REQUEST',
          'forbidden key',
          'the body may not contain "__proto__", "constructor" or "prototype" keys',
        ),
        undefined,
      );
    }
    done(null, parsed);
  });
}

/**
 * 2^31 - 1: no model takes or produces more tokens or choices than this; a larger value is a
 * mistake or an attack on the cost estimate, refused as a bad request rather than priced.
 */
export const MAX_COUNT = 2 ** 31 - 1;

const isPosInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= MAX_COUNT;
const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks the fields Sluice reads; returns the model and stream flag, or a refusal naming the bad field. */
export function checkBody(endpoint: Endpoint, body: unknown): { model: string; stream: boolean } | Refusal {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return refuse('SLUICE_BAD_REQUEST', 'the body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  const model = b.model;
  if (typeof model !== 'string' || model.length === 0 || model.length > 256) {
    return refuse('SLUICE_BAD_REQUEST', '"model" must be a non-empty string of at most 256 characters', {
      param: 'model',
    });
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') {
    return refuse('SLUICE_BAD_REQUEST', '"stream" must be a boolean', { param: 'stream' });
  }
  for (const f of ['max_tokens', 'max_completion_tokens', 'max_output_tokens', 'n'] as const) {
    if (b[f] !== undefined && b[f] !== null && !isPosInt(b[f])) {
      return refuse('SLUICE_BAD_REQUEST', `"${f}" must be a positive integer of at most ${MAX_COUNT}`, {
        param: f,
      });
    }
  }
  // Sluice adds `include_usage` to it: anything but an object would be mangled on the way up.
  if (b.stream_options !== undefined && b.stream_options !== null && !isObject(b.stream_options)) {
    return refuse('SLUICE_BAD_REQUEST', '"stream_options" must be an object', { param: 'stream_options' });
  }
  switch (endpoint) {
    case 'chat':
      if (!Array.isArray(b.messages) || b.messages.length === 0) {
        return refuse('SLUICE_BAD_REQUEST', '"messages" must be a non-empty array', { param: 'messages' });
      }
      for (const m of b.messages) {
        if (!isObject(m) || typeof (m as { role?: unknown }).role !== 'string') {
          return refuse('SLUICE_BAD_REQUEST', 'each message needs a "role"', { param: 'messages' });
        }
      }
      break;
    case 'messages':
      if (!Array.isArray(b.messages) || b.messages.length === 0) {
        return refuse('SLUICE_BAD_REQUEST', '"messages" must be a non-empty array', { param: 'messages' });
      }
      for (const m of b.messages) {
        if (!isObject(m) || typeof (m as { role?: unknown }).role !== 'string') {
          return refuse('SLUICE_BAD_REQUEST', 'each message needs a "role"', { param: 'messages' });
        }
      }
      if (!isPosInt(b.max_tokens))
        return refuse('SLUICE_BAD_REQUEST', '"max_tokens" is required', { param: 'max_tokens' });
      break;
    case 'completions':
      if (typeof b.prompt !== 'string' && !Array.isArray(b.prompt)) {
        return refuse('SLUICE_BAD_REQUEST', '"prompt" must be a string or an array', { param: 'prompt' });
      }
      break;
    case 'embeddings':
      if (typeof b.input !== 'string' && !Array.isArray(b.input)) {
        return refuse('SLUICE_BAD_REQUEST', '"input" must be a string or an array', { param: 'input' });
      }
      break;
    case 'images':
      if (typeof b.prompt !== 'string' || b.prompt.length === 0) {
        return refuse('SLUICE_BAD_REQUEST', '"prompt" must be a non-empty string', { param: 'prompt' });
      }
      break;
    case 'responses':
      if (b.input === undefined)
        return refuse('SLUICE_BAD_REQUEST', '"input" is required', { param: 'input' });
      break;
  }
  return { model, stream: b.stream === true };
}
