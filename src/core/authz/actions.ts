/**
 * Every data-plane endpoint maps to one action, named in the caller's vocabulary. Scopes, step-up
 * rules, audit events and Cedar policies all speak in these names.
 */
import type { Endpoint } from '../ports.js';

/** Action of each forwarded endpoint. */
export const ENDPOINT_ACTIONS = {
  chat: 'chat.create',
  completions: 'completions.create',
  embeddings: 'embeddings.create',
  images: 'images.generate',
  responses: 'responses.create',
  messages: 'messages.create',
} as const satisfies Record<Endpoint, string>;

export const MODELS_LIST_ACTION = 'models.list';

/** Actions of the endpoints that are not forwarded model calls (src/gateway/endpoints/). */
export const AUX_ACTIONS = [
  'messages.count_tokens',
  'models.retrieve',
  'moderations.create',
  // OpenAI Files and Batches; Anthropic Message Batches (issue 15). `*.read` covers list, retrieve,
  // content and results.
  'files.create',
  'files.read',
  'files.delete',
  'batches.create',
  'batches.read',
  'batches.cancel',
  'messages.batches.create',
  'messages.batches.read',
  'messages.batches.cancel',
  'messages.batches.delete',
] as const;

/** The built-in actions (task actions `tasks.<name>` come from the policy's `tasks`). */
export const BUILTIN_ACTIONS: readonly string[] = [
  ...Object.values(ENDPOINT_ACTIONS),
  ...AUX_ACTIONS,
  MODELS_LIST_ACTION,
];

export type BuiltinAction = (typeof ENDPOINT_ACTIONS)[Endpoint] | typeof MODELS_LIST_ACTION;

/** `tasks.<name>` for a task endpoint. */
export function taskAction(name: string): string {
  return `tasks.${name}`;
}

/** The task name of a `tasks.<name>` action, or null for any other action. */
export function taskOfAction(action: string): string | null {
  return action.startsWith('tasks.') && action.length > 6 ? action.slice(6) : null;
}

const ROUTES: Record<string, string> = {
  'POST /v1/chat/completions': 'chat.create',
  'POST /v1/completions': 'completions.create',
  'POST /v1/embeddings': 'embeddings.create',
  'POST /v1/images/generations': 'images.generate',
  'POST /v1/responses': 'responses.create',
  'POST /v1/messages': 'messages.create',
  'GET /v1/models': 'models.list',
  'POST /v1/messages/count_tokens': 'messages.count_tokens',
  'POST /v1/moderations': 'moderations.create',
  'POST /v1/files': 'files.create',
  'GET /v1/files': 'files.read',
  'POST /v1/batches': 'batches.create',
  'GET /v1/batches': 'batches.read',
  'POST /v1/messages/batches': 'messages.batches.create',
  'GET /v1/messages/batches': 'messages.batches.read',
};

/** Routes with an id: method, pattern, action. */
const ID_ROUTES: [string, RegExp, string][] = [
  ['GET', /^\/v1\/models\/.+$/, 'models.retrieve'],
  ['GET', /^\/v1\/files\/[^/]+(\/content)?$/, 'files.read'],
  ['DELETE', /^\/v1\/files\/[^/]+$/, 'files.delete'],
  ['GET', /^\/v1\/batches\/[^/]+$/, 'batches.read'],
  ['POST', /^\/v1\/batches\/[^/]+\/cancel$/, 'batches.cancel'],
  ['GET', /^\/v1\/messages\/batches\/[^/]+(\/results)?$/, 'messages.batches.read'],
  ['POST', /^\/v1\/messages\/batches\/[^/]+\/cancel$/, 'messages.batches.cancel'],
  ['DELETE', /^\/v1\/messages\/batches\/[^/]+$/, 'messages.batches.delete'],
];

/**
 * The action of a data-plane route (`POST /v1/chat/completions` -> `chat.create`,
 * `POST /v1/tasks/summarize` -> `tasks.summarize`), or null for routes that are not actions
 * (health, token exchange, JWKS). `path` is without query string.
 */
export function actionForRoute(method: string, path: string): string | null {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const hit = ROUTES[`${method.toUpperCase()} ${p}`];
  if (hit) return hit;
  const m = method.toUpperCase();
  for (const [rm, re, action] of ID_ROUTES) if (rm === m && re.test(p)) return action;
  if (method.toUpperCase() === 'POST' && p.startsWith('/v1/tasks/')) {
    const name = p.slice('/v1/tasks/'.length);
    if (/^[a-z0-9_-]+$/.test(name)) return taskAction(name);
  }
  return null;
}

/** Every action a policy can name: the built-ins plus one per declared task. */
export function knownActions(taskNames: Iterable<string>): string[] {
  return [...BUILTIN_ACTIONS, ...[...taskNames].map(taskAction)];
}
