/**
 * The 404 for an unknown path, in the format of the vendor the path belongs to, with a hint when the
 * path looks like a base URL with a doubled or missing `/v1` (the Anthropic SDK and LangChain want the
 * base URL without `/v1`, the OpenAI SDK and the AI SDK's providers want it with).
 *
 * Pure, for the gateway's not-found handler: `const nf = notFoundFor(request.method, request.url);
 * sendRefusal(reply, nf.format, nf.refusal)`.
 */
import { type Refusal, refuse } from '../../core/errors.js';
import type { WireFormat } from '../wire.js';

/** Paths Sluice serves below `/v1`, and which vendor's format each speaks. */
const KNOWN: [string, WireFormat][] = [
  ['/messages/count_tokens', 'anthropic'],
  ['/messages/batches', 'anthropic'],
  ['/messages', 'anthropic'],
  ['/chat/completions', 'openai'],
  ['/completions', 'openai'],
  ['/embeddings', 'openai'],
  ['/images/generations', 'openai'],
  ['/responses', 'openai'],
  ['/moderations', 'openai'],
  ['/models', 'openai'],
];

function match(rest: string): [string, WireFormat] | undefined {
  return KNOWN.find(([p]) => rest === p || rest.startsWith(`${p}/`));
}

export interface NotFound {
  format: WireFormat;
  refusal: Refusal;
  /** The path the caller probably meant, when the mistake is a doubled or missing /v1. */
  suggestion?: string;
}

export function notFoundFor(method: string, url: string): NotFound {
  const path = (url.split('?')[0] ?? '/').replace(/\/+$/, '') || '/';
  const shown = `${method.toUpperCase()} ${path.slice(0, 200)}`;
  let suggestion: string | undefined;
  let format: WireFormat = path.startsWith('/v1/messages') ? 'anthropic' : 'openai';
  let hint = '';
  const doubled = /^(\/v1){2,}(\/.*)$/.exec(path);
  if (doubled) {
    const hit = match(doubled[2]!);
    if (hit) {
      suggestion = `/v1${doubled[2]}`;
      format = hit[1];
      hint =
        hit[1] === 'anthropic'
          ? '; the base URL has one /v1 too many: the Anthropic SDK and LangChain want it without /v1 (http://host:port)'
          : '; the base URL has one /v1 too many: use http://host:port/v1';
    }
  } else if (!path.startsWith('/v1/')) {
    const hit = match(path);
    if (hit) {
      suggestion = `/v1${path}`;
      format = hit[1];
      hint =
        hit[1] === 'anthropic'
          ? '; the base URL lacks /v1: the AI SDK Anthropic provider wants http://host:port/v1'
          : '; the base URL lacks /v1: the OpenAI SDK, the AI SDK and LangChain want http://host:port/v1';
    }
  }
  const detail = suggestion ? `${shown} (did you mean ${suggestion}?${hint.slice(1)})` : shown;
  return { format, refusal: refuse('SLUICE_NOT_FOUND', detail), suggestion };
}
