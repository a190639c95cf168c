/**
 * What makes the built-in mock behave like a model API when a request asks for structure:
 *  - `tools` → a tool call whose arguments are a deterministic instance of the tool's JSON schema;
 *    once the conversation ends with the tool's result, the mock answers text again;
 *  - `response_format: json_schema | json_object` (chat), `text.format` (Responses),
 *    `output_format` / `output_config.format` (Messages) → a JSON text valid against the schema;
 *  - local token counting (gpt-tokenizer, o200k) for `count_tokens` and for structured answers.
 *
 * Generation covers the JSON Schema that SDK helpers emit (zod via openai's `zodResponseFormat`, the
 * AI SDK and LangChain): type (and type lists), properties/required, additionalProperties, items,
 * prefixItems, enum, const, anyOf/oneOf/allOf, $ref into $defs/definitions (recursion bounded),
 * min/max on numbers, lengths and item counts, multipleOf, and the common string formats. `pattern`
 * is not solved: a schema whose strings must match a pattern gets a plain word.
 */

import type { Endpoint } from '../core/ports.js';
import { mulberry32 } from '../core/prng.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = Record<string, unknown>;

/** One tool call of a mock answer; `arguments` is the JSON text of `input`. */
export interface MockToolCall {
  id: string;
  name: string;
  input: Json;
  arguments: string;
}

/** What the mock answers instead of prose: a tool call, or a JSON text. */
export type StructuredAnswer = { kind: 'tool'; call: MockToolCall } | { kind: 'json'; text: string };

/** FNV-1a, 32 bits. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const WORDS = ['alpha', 'bravo', 'delta', 'echo', 'harbor', 'meadow', 'river', 'summit', 'willow', 'cedar'];
/** Recursion through $ref stops adding optional parts beyond this depth. */
const DEEP = 6;
/** Hard stop: a schema that requires infinite nesting gets `null` here. */
const MAX_DEPTH = 24;

function isObj(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function numOf(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Constraint names as the AI SDK's Anthropic provider writes them into `description` ("minimum: 1; max length: 5."). */
const DESCRIBED: Record<string, string> = {
  minimum: 'minimum',
  maximum: 'maximum',
  'exclusive minimum': 'exclusiveMinimum',
  'exclusive maximum': 'exclusiveMaximum',
  'multiple of': 'multipleOf',
  'min length': 'minLength',
  'max length': 'maxLength',
  'min items': 'minItems',
  'max items': 'maxItems',
  'unique items': 'uniqueItems',
};

/**
 * Constraints a provider moved into `description` because the vendor's schema dialect lacks them
 * (a real model reads them there too), added back as keywords when the schema does not set them.
 */
function withDescribedConstraints(s: Schema): Schema {
  if (typeof s.description !== 'string' || !s.description.includes(': ')) return s;
  let out: Schema | undefined;
  for (const part of s.description.replace(/\.$/, '').split('; ')) {
    const m = /(?:^|\. )([a-z ]+): (.+)$/.exec(part.trim());
    const key = m ? DESCRIBED[m[1]!] : undefined;
    if (!m || !key || key in s) continue;
    const v = key === 'uniqueItems' ? m[2] === 'true' : Number(m[2]);
    if (typeof v === 'number' && !Number.isFinite(v)) continue;
    out ??= { ...s };
    out[key] = v;
  }
  return out ?? s;
}

class Generator {
  constructor(
    private readonly root: Schema,
    private readonly rnd: () => number,
  ) {}

  private resolve(ref: string): Schema {
    if (!ref.startsWith('#')) return {};
    let cur: unknown = this.root;
    for (const raw of ref.slice(1).split('/').filter(Boolean)) {
      const k = raw.replaceAll('~1', '/').replaceAll('~0', '~');
      if (!isObj(cur) && !Array.isArray(cur)) return {};
      cur = (cur as Record<string, unknown>)[k];
    }
    return isObj(cur) ? cur : {};
  }

  /** Merges allOf members and $ref targets into one schema (shallow, properties merged). */
  private flatten(s: Schema, depth: number): Schema {
    let out: Schema = s;
    if (typeof s.$ref === 'string' && depth < MAX_DEPTH) {
      const { $ref, ...rest } = s;
      out = { ...this.flatten(this.resolve($ref as string), depth + 1), ...rest };
    }
    if (Array.isArray(out.allOf)) {
      const { allOf, ...rest } = out;
      let merged: Schema = rest;
      for (const part of allOf as unknown[]) {
        if (!isObj(part)) continue;
        const p = this.flatten(part, depth + 1);
        merged = {
          ...p,
          ...merged,
          properties: { ...(p.properties as Schema), ...(merged.properties as Schema) },
          required: [...((p.required as string[]) ?? []), ...((merged.required as string[]) ?? [])],
        };
      }
      out = merged;
    }
    return out;
  }

  instance(schema: unknown, depth: number, name: string): Json {
    if (schema === true || schema === undefined) return name ? `${name} value` : 'value';
    if (!isObj(schema) || depth > MAX_DEPTH) return null;
    const s = withDescribedConstraints(this.flatten(schema, depth));
    if ('const' in s) return s.const as Json;
    if (Array.isArray(s.enum) && s.enum.length > 0)
      return s.enum[Math.floor(this.rnd() * s.enum.length)] as Json;
    const branches = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
    if (Array.isArray(branches) && branches.length > 0) {
      // Deep in a recursive schema, prefer a branch that ends the recursion (null, a scalar).
      const simple = branches.find(
        (b) => isObj(b) && typeof b.type === 'string' && b.type !== 'object' && b.type !== 'array',
      );
      const pick =
        depth >= DEEP && simple !== undefined
          ? simple
          : (branches.find((b) => !(isObj(b) && b.type === 'null')) ?? branches[0]);
      const { anyOf: _a, oneOf: _o, ...rest } = s;
      return this.instance({ ...rest, ...(isObj(pick) ? pick : {}) }, depth + 1, name);
    }
    let type = s.type;
    if (Array.isArray(type)) {
      const nonNull = type.filter((t) => t !== 'null');
      type = depth >= DEEP && type.includes('null') ? 'null' : (nonNull[0] ?? 'null');
    }
    if (type === undefined) {
      if (isObj(s.properties)) type = 'object';
      else if (s.items !== undefined) type = 'array';
      else type = 'string';
    }
    switch (type) {
      case 'null':
        return null;
      case 'boolean':
        return this.rnd() < 0.5;
      case 'integer':
      case 'number':
        return this.number(s, type === 'integer');
      case 'string':
        return this.string(s, name);
      case 'array':
        return this.array(s, depth, name);
      case 'object':
        return this.object(s, depth);
      default:
        return null;
    }
  }

  private number(s: Schema, integer: boolean): number {
    let lo = numOf(s.minimum) ?? Number.NEGATIVE_INFINITY;
    let hi = numOf(s.maximum) ?? Number.POSITIVE_INFINITY;
    const xlo = numOf(s.exclusiveMinimum);
    const xhi = numOf(s.exclusiveMaximum);
    const step = numOf(s.multipleOf) ?? (integer ? 1 : 0.5);
    if (xlo !== undefined) lo = Math.max(lo, xlo + step);
    if (xhi !== undefined) hi = Math.min(hi, xhi - step);
    if (!Number.isFinite(lo)) lo = Number.isFinite(hi) ? hi - 100 : 0;
    if (!Number.isFinite(hi)) hi = lo + 100;
    const raw = lo + this.rnd() * (hi - lo);
    let v = Math.round(raw / step) * step;
    if (v < lo) v += step;
    if (v > hi) v -= step;
    if (v < lo || v > hi) v = lo;
    return integer ? Math.round(v) : Number(v.toFixed(6));
  }

  private string(s: Schema, name: string): string {
    const min = numOf(s.minLength) ?? 0;
    const max = numOf(s.maxLength) ?? Number.POSITIVE_INFINITY;
    const when = new Date(Date.UTC(2026, 0, 1) + Math.floor(this.rnd() * 365) * 86_400_000);
    let v: string;
    switch (s.format) {
      case 'date-time':
        v = when.toISOString();
        break;
      case 'date':
        v = when.toISOString().slice(0, 10);
        break;
      case 'time':
        v = '12:00:00Z';
        break;
      case 'email':
        v = `${WORDS[Math.floor(this.rnd() * WORDS.length)]}@example.com`;
        break;
      case 'uri':
      case 'url':
        v = `https://example.com/${WORDS[Math.floor(this.rnd() * WORDS.length)]}`;
        break;
      case 'uuid': {
        const hex = Array.from({ length: 32 }, () => Math.floor(this.rnd() * 16).toString(16)).join('');
        v = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
        break;
      }
      case 'ipv4':
        v = '192.0.2.1';
        break;
      default: {
        const word = WORDS[Math.floor(this.rnd() * WORDS.length)]!;
        v = name ? `${name} ${word}` : word;
      }
    }
    while (v.length < min) v += 'x';
    // Too long for maxLength: random letters instead of a cut word, so uniqueItems can still be met.
    if (v.length > max)
      v = Array.from({ length: max }, () => String.fromCharCode(97 + Math.floor(this.rnd() * 26))).join('');
    return v;
  }

  private array(s: Schema, depth: number, name: string): Json[] {
    const min = numOf(s.minItems) ?? 0;
    const max = numOf(s.maxItems) ?? Number.POSITIVE_INFINITY;
    const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as unknown[]) : [];
    const want = depth >= DEEP ? min : 2;
    const n = Math.max(min, Math.min(max, Math.max(want, prefix.length)));
    const out: Json[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const item = i < prefix.length ? prefix[i] : s.items;
      let v = this.instance(item, depth + 1, name);
      // uniqueItems: a few more draws, then give up on extra items rather than repeat one.
      for (let tries = 0; s.uniqueItems === true && seen.has(JSON.stringify(v)) && tries < 8; tries++)
        v = this.instance(item, depth + 1, `${name}${tries + 2}`);
      if (s.uniqueItems === true && seen.has(JSON.stringify(v))) {
        if (out.length >= min) break;
      }
      seen.add(JSON.stringify(v));
      out.push(v);
    }
    return out;
  }

  private object(s: Schema, depth: number): { [k: string]: Json } {
    const props = isObj(s.properties) ? s.properties : {};
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
    const out: { [k: string]: Json } = {};
    for (const [k, sub] of Object.entries(props)) {
      if (depth >= DEEP && !required.has(k)) continue;
      out[k] = this.instance(sub, depth + 1, k);
    }
    for (const k of required) if (!(k in out)) out[k] = this.instance(true, depth + 1, k);
    return out;
  }
}

/** A deterministic instance of `schema` (same schema and seed, same instance). */
export function instanceOf(schema: unknown, seed: string): Json {
  const root = isObj(schema) ? schema : {};
  return new Generator(root, mulberry32(hash(`${seed}\u0000${JSON.stringify(schema)}`))).instance(
    root,
    0,
    '',
  );
}

type Tokenizer = typeof import('gpt-tokenizer');
let tokenizer: Promise<Tokenizer> | undefined;

/**
 * gpt-tokenizer, loaded on first use: its o200k tables take ~100 ms and several MB to load, which an
 * ordinary gateway start (or a mock answering prose) should not pay.
 */
export function loadTokenizer(): Promise<Tokenizer> {
  tokenizer ??= import('gpt-tokenizer');
  return tokenizer;
}

/** Tokens of `text` as the o200k tokenizer counts them. */
export async function countTokens(text: string): Promise<number> {
  return (await loadTokenizer()).countTokens(text);
}

/** `text` cut into its tokens' texts (for streaming a JSON answer token by token). */
export async function tokenPieces(text: string): Promise<string[]> {
  const { encode, decode } = await loadTokenizer();
  const ids = encode(text);
  const out: string[] = [];
  let buf: number[] = [];
  for (const id of ids) {
    buf.push(id);
    const piece = decode(buf);
    // A multi-byte character split across tokens decodes to U+FFFD until its last token arrives.
    if (piece.includes('\uFFFD') && buf.length < 4) continue;
    out.push(piece);
    buf = [];
  }
  if (buf.length) out.push(decode(buf));
  return out;
}

interface ToolDef {
  name: string;
  schema: unknown;
}

/** The function tools of a request, in the endpoint's own shape. */
function toolsOf(endpoint: Endpoint, body: Schema): ToolDef[] {
  const out: ToolDef[] = [];
  const list = Array.isArray(body.tools) ? body.tools : [];
  for (const t of list) {
    if (!isObj(t)) continue;
    if (endpoint === 'chat' && isObj(t.function) && typeof t.function.name === 'string')
      out.push({ name: t.function.name, schema: t.function.parameters ?? { type: 'object' } });
    else if (endpoint === 'responses' && t.type === 'function' && typeof t.name === 'string')
      out.push({ name: t.name, schema: t.parameters ?? { type: 'object' } });
    else if (
      endpoint === 'messages' &&
      typeof t.name === 'string' &&
      (t.type === undefined || t.type === 'custom')
    )
      out.push({ name: t.name, schema: t.input_schema ?? { type: 'object' } });
  }
  if (endpoint === 'chat' && Array.isArray(body.functions))
    for (const f of body.functions)
      if (isObj(f) && typeof f.name === 'string')
        out.push({ name: f.name, schema: f.parameters ?? { type: 'object' } });
  return out;
}

/** The tool the request forces or allows, or null when it must answer text. */
function chosenTool(body: Schema, tools: ToolDef[]): ToolDef | null {
  if (tools.length === 0) return null;
  const choice = body.tool_choice ?? body.function_call;
  if (choice === 'none' || (isObj(choice) && choice.type === 'none')) return null;
  let name: string | undefined;
  if (isObj(choice)) {
    if (isObj(choice.function) && typeof choice.function.name === 'string') name = choice.function.name;
    else if (typeof choice.name === 'string') name = choice.name;
  }
  return (name !== undefined ? tools.find((t) => t.name === name) : undefined) ?? tools[0]!;
}

/** True when the conversation's last turn hands back a tool's result (the model answers it in text). */
function endsWithToolResult(endpoint: Endpoint, body: Schema): boolean {
  if (endpoint === 'responses') {
    const input = body.input;
    if (!Array.isArray(input) || input.length === 0) return false;
    const last = input[input.length - 1];
    return isObj(last) && last.type === 'function_call_output';
  }
  const msgs = body.messages;
  if (!Array.isArray(msgs) || msgs.length === 0) return false;
  const last = msgs[msgs.length - 1];
  if (!isObj(last)) return false;
  if (endpoint === 'chat') return last.role === 'tool' || last.role === 'function';
  return (
    last.role === 'user' &&
    Array.isArray(last.content) &&
    last.content.some((b) => isObj(b) && b.type === 'tool_result')
  );
}

/** The JSON output the request asks for: a schema, `{}` for any JSON object, or undefined for text. */
function jsonFormatOf(endpoint: Endpoint, body: Schema): Schema | undefined {
  let f: unknown;
  if (endpoint === 'chat') f = body.response_format;
  else if (endpoint === 'responses') f = isObj(body.text) ? body.text.format : undefined;
  else if (endpoint === 'messages')
    f = body.output_format ?? (isObj(body.output_config) ? body.output_config.format : undefined);
  if (!isObj(f)) return undefined;
  if (f.type === 'json_object') return {};
  if (f.type !== 'json_schema') return undefined;
  // Chat nests it as json_schema.schema; Responses and Messages put `schema` on the format itself.
  const schema = isObj(f.json_schema) ? f.json_schema.schema : f.schema;
  return isObj(schema) ? schema : { type: 'object' };
}

/**
 * What a structured request should get from the mock, or null for ordinary prose. `seed` (the
 * prompt's text) keeps the answer deterministic; `requestId` names the tool call.
 */
export function structuredAnswer(
  endpoint: Endpoint,
  body: Schema,
  seed: string,
  requestId: string,
): StructuredAnswer | null {
  if (endpoint !== 'chat' && endpoint !== 'responses' && endpoint !== 'messages') return null;
  if (!endsWithToolResult(endpoint, body)) {
    const tool = chosenTool(body, toolsOf(endpoint, body));
    if (tool) {
      const input = instanceOf(tool.schema, `${tool.name}\u0000${seed}`);
      const idHead = endpoint === 'messages' ? 'toolu_' : 'call_';
      return {
        kind: 'tool',
        call: {
          id: `${idHead}${hash(`${requestId}:${tool.name}`).toString(36)}`,
          name: tool.name,
          input,
          arguments: JSON.stringify(input),
        },
      };
    }
  }
  const schema = jsonFormatOf(endpoint, body);
  if (schema === undefined) return null;
  const value =
    Object.keys(schema).length === 0
      ? { answer: `mock reply to: ${seed.slice(0, 80)}` }
      : instanceOf(schema, seed);
  return { kind: 'json', text: JSON.stringify(value) };
}

/** What the tool-call renderers need from the mock's plan. */
export interface ToolAnswerPlan {
  endpoint: Endpoint;
  id: string;
  model: string;
  created: number;
  input: number;
  call: MockToolCall;
  /** The arguments' JSON cut into token pieces; their count is the answer's output tokens. */
  pieces: string[];
  body: Schema;
}

function chatToolUsage(input: number, output: number): Schema {
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function responsesToolObject(p: ToolAnswerPlan, done: boolean): Schema {
  const output = p.pieces.length;
  return {
    id: p.id,
    object: 'response',
    created_at: p.created,
    status: done ? 'completed' : 'in_progress',
    error: null,
    incomplete_details: null,
    instructions: typeof p.body.instructions === 'string' ? p.body.instructions : null,
    max_output_tokens: numOf(p.body.max_output_tokens) ?? null,
    model: p.model,
    output: done ? [responsesToolItem(p, true)] : [],
    parallel_tool_calls: true,
    previous_response_id: null,
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: p.body.tool_choice ?? 'auto',
    tools: Array.isArray(p.body.tools) ? p.body.tools : [],
    top_p: 1,
    truncation: 'disabled',
    usage: done
      ? {
          input_tokens: p.input,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: output,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: p.input + output,
        }
      : null,
    metadata: {},
  };
}

function responsesToolItem(p: ToolAnswerPlan, done: boolean): Schema {
  return {
    id: `fc_${p.id}`,
    type: 'function_call',
    status: done ? 'completed' : 'in_progress',
    arguments: done ? p.call.arguments : '',
    call_id: p.call.id,
    name: p.call.name,
  };
}

/** The non-streaming answer carrying a tool call, per endpoint. */
export function toolAnswerWhole(p: ToolAnswerPlan): Schema {
  const output = p.pieces.length;
  if (p.endpoint === 'responses') return responsesToolObject(p, true);
  if (p.endpoint === 'messages')
    return {
      id: p.id,
      type: 'message',
      role: 'assistant',
      model: p.model,
      content: [{ type: 'tool_use', id: p.call.id, name: p.call.name, input: p.call.input }],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: {
        input_tokens: p.input,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: output,
      },
    };
  const legacy = p.body.functions !== undefined && p.body.tools === undefined;
  const message = legacy
    ? { role: 'assistant', content: null, function_call: { name: p.call.name, arguments: p.call.arguments } }
    : {
        role: 'assistant',
        content: null,
        refusal: null,
        annotations: [],
        tool_calls: [
          { id: p.call.id, type: 'function', function: { name: p.call.name, arguments: p.call.arguments } },
        ],
      };
  return {
    id: p.id,
    object: 'chat.completion',
    created: p.created,
    model: p.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: legacy ? 'function_call' : 'tool_calls' }],
    usage: chatToolUsage(p.input, output),
    service_tier: 'default',
    system_fingerprint: 'fp_sluice_mock',
  };
}

function sse(data: unknown, event?: string): string {
  const json = JSON.stringify(data);
  return event ? `event: ${event}\ndata: ${json}\n\n` : `data: ${json}\n\n`;
}

/** The SSE pieces of a streamed tool call, in the order the real API sends them; `token` pieces count as output. */
export function toolAnswerPieces(p: ToolAnswerPlan): { sse: string; token?: boolean }[] {
  const out: { sse: string; token?: boolean }[] = [];
  if (p.endpoint === 'chat') {
    const so = p.body.stream_options;
    const withUsage = isObj(so) && so.include_usage === true;
    const head = {
      id: p.id,
      object: 'chat.completion.chunk',
      created: p.created,
      model: p.model,
      service_tier: 'default',
      system_fingerprint: 'fp_sluice_mock',
      ...(withUsage ? { usage: null } : {}),
    };
    const chunk = (delta: Schema, finish: string | null) =>
      sse({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    out.push({
      sse: chunk(
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { index: 0, id: p.call.id, type: 'function', function: { name: p.call.name, arguments: '' } },
          ],
        },
        null,
      ),
    });
    for (const piece of p.pieces)
      out.push({
        sse: chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }, null),
        token: true,
      });
    out.push({ sse: chunk({}, 'tool_calls') });
    if (withUsage)
      out.push({ sse: sse({ ...head, choices: [], usage: chatToolUsage(p.input, p.pieces.length) }) });
    out.push({ sse: 'data: [DONE]\n\n' });
    return out;
  }
  if (p.endpoint === 'responses') {
    let seq = 0;
    const ev = (type: string, fields: Schema) => sse({ type, ...fields, sequence_number: seq++ }, type);
    const itemId = `fc_${p.id}`;
    out.push({ sse: ev('response.created', { response: responsesToolObject(p, false) }) });
    out.push({ sse: ev('response.in_progress', { response: responsesToolObject(p, false) }) });
    out.push({
      sse: ev('response.output_item.added', { output_index: 0, item: responsesToolItem(p, false) }),
    });
    for (const delta of p.pieces)
      out.push({
        sse: ev('response.function_call_arguments.delta', { item_id: itemId, output_index: 0, delta }),
        token: true,
      });
    out.push({
      sse: ev('response.function_call_arguments.done', {
        item_id: itemId,
        output_index: 0,
        name: p.call.name,
        arguments: p.call.arguments,
      }),
    });
    out.push({ sse: ev('response.output_item.done', { output_index: 0, item: responsesToolItem(p, true) }) });
    out.push({ sse: ev('response.completed', { response: responsesToolObject(p, true) }) });
    return out;
  }
  const start = {
    type: 'message_start',
    message: {
      id: p.id,
      type: 'message',
      role: 'assistant',
      model: p.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: p.input,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: 1,
      },
    },
  };
  out.push({ sse: sse(start, 'message_start') });
  out.push({
    sse: sse(
      {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'tool_use', id: p.call.id, name: p.call.name, input: {} },
      },
      'content_block_start',
    ),
  });
  for (const partial_json of p.pieces)
    out.push({
      sse: sse(
        { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json } },
        'content_block_delta',
      ),
      token: true,
    });
  out.push({ sse: sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop') });
  out.push({
    sse: sse(
      {
        type: 'message_delta',
        delta: { stop_reason: 'tool_use', stop_sequence: null },
        usage: { output_tokens: p.pieces.length },
      },
      'message_delta',
    ),
  });
  out.push({ sse: sse({ type: 'message_stop' }, 'message_stop') });
  return out;
}
