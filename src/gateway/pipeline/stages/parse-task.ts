/**
 * Stage `parseTask` (the `parse` of `/v1/tasks/:name`): checks the input and parameters against the
 * task's declaration and builds the chat call it stands for. Writes `ctx.body`, `ctx.model`,
 * `ctx.stream`; the call then goes through the same stages as `/v1/chat/completions`.
 */
import { type Refusal, refuse } from '../../../core/errors.js';
import type { RequestContext } from '../context.js';

/** Longest string parameter a task accepts. */
const MAX_PARAM_CHARS = 1000;

export function parseTask(ctx: RequestContext): Refusal | undefined {
  const name = (ctx.request.params as { name: string }).name;
  const task = ctx.rt.cfg.tasks[name];
  if (!task) return refuse('SLUICE_UNKNOWN_TASK', name.slice(0, 64));
  const body = ctx.body as { input?: unknown; params?: unknown; stream?: unknown } | null;
  if (!body || typeof body !== 'object' || typeof body.input !== 'string') {
    return refuse('SLUICE_BAD_REQUEST', '"input" must be a string', { param: 'input' });
  }
  if (body.input.length > task.input.maxChars) {
    return refuse('SLUICE_BAD_REQUEST', `"input" is longer than ${task.input.maxChars} characters`, {
      param: 'input',
    });
  }
  const given = (body.params ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object' || Array.isArray(given)) {
    return refuse('SLUICE_BAD_REQUEST', '"params" must be an object', { param: 'params' });
  }
  for (const k of Object.keys(given)) {
    if (!(k in task.params)) {
      return refuse('SLUICE_BAD_REQUEST', `unknown parameter "${k.slice(0, 64)}"`, {
        param: `params.${k.slice(0, 64)}`,
      });
    }
  }
  const values: Record<string, string> = {};
  for (const [k, spec] of Object.entries(task.params)) {
    const v = given[k] ?? spec.default;
    const why = paramProblem(spec, v);
    if (why) return refuse('SLUICE_BAD_REQUEST', `parameter "${k}" ${why}`, { param: `params.${k}` });
    values[k] = String(v);
  }
  const system = task.system.replace(/\{\{(\w+)\}\}/g, (_, k: string) => values[k] ?? '');
  const stream = body.stream === true;
  ctx.model = task.model;
  ctx.stream = stream;
  ctx.body = {
    model: task.model,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: body.input },
    ],
    max_tokens: task.maxTokens,
    stream,
  };
  return undefined;
}

interface ParamSpec {
  type: string;
  min?: number;
  max?: number;
  enum?: readonly string[];
}

/** Why a parameter value does not fit its declaration, or null when it does. */
function paramProblem(spec: ParamSpec, v: unknown): string | null {
  if (v === undefined) return 'is required';
  if (spec.type === 'integer' || spec.type === 'number') {
    if (typeof v !== 'number' || (spec.type === 'integer' && !Number.isInteger(v)))
      return `must be an ${spec.type}`;
    if (spec.min !== undefined && v < spec.min) return `must be at least ${spec.min}`;
    if (spec.max !== undefined && v > spec.max) return `must be at most ${spec.max}`;
    return null;
  }
  if (spec.type === 'boolean') return typeof v === 'boolean' ? null : 'must be a boolean';
  if (typeof v !== 'string') return 'must be a string';
  if (spec.enum && !spec.enum.includes(v)) return `must be one of ${spec.enum.join(', ')}`;
  if (v.length > MAX_PARAM_CHARS) return 'is too long';
  return null;
}
