/**
 * The error catalogue: every refusal Sluice can give, on either plane, lives here.
 *
 * Each entry has a stable code (never renamed once released), the HTTP status, the OpenAI-style
 * `type` used on `/v1/*`, the Anthropic-style `type` used on `/v1/messages`, and a public message.
 * Public messages never carry secrets, stack traces or upstream credentials; details that help the
 * caller (the limit that bound, the missing scope) are passed as `detail` and appended.
 *
 * `docs/errors.md` lists every code; a test keeps the two in step.
 */

export interface ErrorDef {
  status: number;
  /** OpenAI error `type` (`invalid_request_error`, `authentication_error`, ...). */
  type: string;
  /** Anthropic error `type` (`invalid_request_error`, `rate_limit_error`, ...). */
  anthropicType: string;
  /** Public message; `detail` is appended after a colon when given. */
  message: string;
  /** When false, clients are told not to retry (`x-should-retry: false`). */
  retryable?: boolean;
}

export const ERRORS = {
  // 400: the request itself is wrong
  SLUICE_BAD_JSON: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request body is not valid JSON',
  },
  SLUICE_BAD_REQUEST: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request is invalid',
  },
  SLUICE_BAD_UTF8: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request body is not valid UTF-8',
  },
  SLUICE_JSON_TOO_DEEP: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request body is nested too deeply or has arrays or strings that are too long',
  },
  SLUICE_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request body must be application/json',
  },
  SLUICE_PARAM_OUT_OF_RANGE: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'A parameter is outside the range your tier allows',
  },
  SLUICE_BODY_TOO_LARGE: {
    status: 413,
    type: 'invalid_request_error',
    anthropicType: 'request_too_large',
    message: 'The request body is larger than this endpoint accepts',
  },
  SLUICE_HEADERS_TOO_LARGE: {
    status: 431,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request headers are too large',
  },
  SLUICE_REQUEST_TIMEOUT: {
    status: 408,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request was not received in time',
  },
  SLUICE_NOT_FOUND: {
    status: 404,
    type: 'invalid_request_error',
    anthropicType: 'not_found_error',
    message: 'No such endpoint',
  },
  SLUICE_METHOD_NOT_ALLOWED: {
    status: 405,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'Method not allowed on this endpoint',
  },
  SLUICE_UNKNOWN_MODEL: {
    status: 404,
    type: 'invalid_request_error',
    anthropicType: 'not_found_error',
    message: 'The model does not exist or you do not have access to it',
  },
  SLUICE_UNKNOWN_TASK: {
    status: 404,
    type: 'invalid_request_error',
    anthropicType: 'not_found_error',
    message: 'No such task',
  },

  // 401/403: who you are and what you may do
  SLUICE_MISSING_KEY: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'No API key provided. Send it as "Authorization: Bearer sk-sluice-..."',
  },
  SLUICE_INVALID_KEY: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'Invalid API key',
  },
  SLUICE_KEY_REVOKED: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'This API key has been revoked',
  },
  SLUICE_KEY_EXPIRED: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'This API key has expired',
  },
  SLUICE_INVALID_TOKEN: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'Invalid or expired access token',
  },
  SLUICE_DPOP_INVALID: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'Missing or invalid DPoP proof',
  },
  SLUICE_STEP_UP_REQUIRED: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'This action needs a token minted with a fresh second factor',
  },
  SLUICE_TOO_MANY_AUTH_FAILURES: {
    status: 429,
    type: 'rate_limit_error',
    anthropicType: 'rate_limit_error',
    message: 'Too many failed authentication attempts; try again later',
  },
  SLUICE_SCOPE_DENIED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'This key is not allowed to perform this action',
  },
  SLUICE_MODEL_DENIED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'This key is not allowed to use this model',
  },
  SLUICE_IP_DENIED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'Requests from this address are not allowed for this key',
  },
  SLUICE_GEO_DENIED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'Requests from this location are not allowed for this key',
  },
  SLUICE_TIME_DENIED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'This key is not allowed to be used at this time',
  },
  SLUICE_POLICY_DENIED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'The policy refused this request',
  },
  SLUICE_QUARANTINED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'This capability is paused pending review',
    retryable: false,
  },

  // 429: limits
  SLUICE_RATE_LIMITED: {
    status: 429,
    type: 'requests',
    anthropicType: 'rate_limit_error',
    message: 'Rate limit reached',
  },
  SLUICE_QUOTA_EXCEEDED: {
    status: 429,
    type: 'insufficient_quota',
    anthropicType: 'rate_limit_error',
    message: 'You exceeded your quota',
    retryable: false,
  },
  SLUICE_CONCURRENCY_LIMITED: {
    status: 429,
    type: 'requests',
    anthropicType: 'rate_limit_error',
    message: 'Too many requests in flight',
  },

  // 5xx: Sluice or the upstream
  SLUICE_UPSTREAM_ERROR: {
    status: 502,
    type: 'api_error',
    anthropicType: 'api_error',
    message: 'The upstream model service failed',
  },
  SLUICE_UPSTREAM_TIMEOUT: {
    status: 504,
    type: 'api_error',
    anthropicType: 'api_error',
    message: 'The upstream model service did not answer in time',
  },
  SLUICE_UPSTREAM_UNAVAILABLE: {
    status: 503,
    type: 'api_error',
    anthropicType: 'overloaded_error',
    message: 'The upstream model service is unavailable (circuit open)',
  },
  SLUICE_NO_TRUSTED_UPSTREAM: {
    status: 503,
    type: 'api_error',
    anthropicType: 'overloaded_error',
    message:
      'No upstream carrying the labels this request is pinned to is available; it was not sent to any other',
  },
  SLUICE_UPSTREAM_UNTRUSTED: {
    status: 502,
    type: 'api_error',
    anthropicType: 'api_error',
    message: 'The upstream did not present a trusted certificate; nothing was sent to it',
  },
  SLUICE_STORE_UNAVAILABLE: {
    status: 503,
    type: 'api_error',
    anthropicType: 'api_error',
    message: 'A backing store is unavailable; try again shortly',
  },
  SLUICE_SHUTTING_DOWN: {
    status: 503,
    type: 'api_error',
    anthropicType: 'overloaded_error',
    message: 'The gateway is shutting down',
  },
  SLUICE_INTERNAL: {
    status: 500,
    type: 'api_error',
    anthropicType: 'api_error',
    message: 'Internal error',
  },

  // management plane
  SLUICE_ADMIN_UNAUTHORIZED: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'Missing or invalid admin token',
  },
  SLUICE_ADMIN_FORBIDDEN: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'Your admin role does not allow this operation',
  },
  SLUICE_ADMIN_NOT_FOUND: {
    status: 404,
    type: 'invalid_request_error',
    anthropicType: 'not_found_error',
    message: 'Not found',
  },
  SLUICE_ADMIN_CONFLICT: {
    status: 409,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'Conflict',
  },
  SLUICE_POLICY_INVALID: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The policy is invalid',
  },
  SLUICE_EXCEPTION_INVALID: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The exception request is invalid',
  },
  SLUICE_EXCEPTION_STATE: {
    status: 409,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The exception is not in a state that allows this',
  },
  SLUICE_SESSION_INVALID: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'The session is missing, expired or was signed out',
  },
  SLUICE_CSRF_FAILED: {
    status: 403,
    type: 'permission_error',
    anthropicType: 'permission_error',
    message: 'Missing or wrong CSRF token for this session',
  },
  SLUICE_ADMIN_LOGIN_FAILED: {
    status: 401,
    type: 'authentication_error',
    anthropicType: 'authentication_error',
    message: 'Wrong username or password',
  },

  // upstream errors mapped into the catalogue (src/providers/upstream-errors.ts): never the upstream's body
  SLUICE_UPSTREAM_RATE_LIMITED: {
    status: 429,
    type: 'rate_limit_error',
    anthropicType: 'rate_limit_error',
    message: 'The upstream model service is rate limiting requests',
  },
  SLUICE_UPSTREAM_REJECTED: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The upstream model service rejected the request',
    retryable: false,
  },
  SLUICE_CONTENT_BLOCKED: {
    status: 400,
    type: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
    message: 'The request was blocked by content screening',
    retryable: false,
  },
  SLUICE_SCREENING_UNAVAILABLE: {
    status: 503,
    type: 'api_error',
    anthropicType: 'overloaded_error',
    message: 'Content screening is unavailable and this request may not go on without it',
  },
  SLUICE_SUNSET: {
    status: 410,
    type: 'invalid_request_error',
    anthropicType: 'not_found_error',
    message: 'This model, route or key has been retired',
    retryable: false,
  },
} as const satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;

/** How an audit event records a refusal: refused by policy, throttled by a limit, or an error. */
export type RefusalDecision = 'refused' | 'throttled' | 'error';

/**
 * A refusal as a value. Stages return it; only the edge turns it into HTTP.
 * `kind` is the discriminant (a principal or any other object with a `code` is never a refusal).
 * `detail`, `message` and `param` are public (sent to the caller); `internal`, `keyId`, `decision`,
 * `audit` and `silent` are for the audit event and log only, never sent.
 */
export interface Refusal {
  /** Set by `refuse()`; literals built elsewhere may omit it (see `isRefusal`). */
  readonly kind?: 'refusal';
  code: ErrorCode;
  detail?: string;
  /** Replaces the catalogue message whole (e.g. a limit denial that names the limit, usage and wait). */
  message?: string;
  param?: string;
  headers?: Record<string, string>;
  /** Why a rule, Cedar or DPoP refused: audit event and log only. */
  internal?: string;
  /** The key the refused credential belongs to, when known (a revoked or expired key). */
  keyId?: string;
  /** How the audit event records it; `refused` when absent. */
  decision?: RefusalDecision;
  /** Extra audit details (the limit that bound, the wait). Never sent to the caller. */
  audit?: Record<string, unknown>;
  /** Audited but not answered: the caller has gone (closed while queued or forwarded). */
  silent?: { reason: string; status: number };
}

export function refuse(
  code: ErrorCode,
  detail?: string,
  extra?: Omit<Refusal, 'kind' | 'code' | 'detail'>,
): Refusal {
  return { kind: 'refusal', code, detail, ...extra };
}

/**
 * True for a Refusal value: by its discriminant, or (for a literal without one) a catalogue code on
 * an object that is not a principal. A refusal may carry `keyId`, never `tenantId`.
 */
export function isRefusal(x: unknown): x is Refusal {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as { kind?: unknown; code?: unknown };
  if (o.kind === 'refusal') return true;
  return typeof o.code === 'string' && o.code in ERRORS && !('tenantId' in x);
}

/** The HTTP status of a refusal, from the catalogue. */
export function statusOf(r: Refusal): number {
  return ERRORS[r.code].status;
}

export function publicMessage(r: Refusal): string {
  if (r.message) return r.message;
  const def: ErrorDef = ERRORS[r.code];
  return r.detail ? `${def.message}: ${r.detail}` : def.message;
}

/** OpenAI wire format: `{"error":{"message","type","code","param"}}`. */
export function openAIErrorBody(r: Refusal): {
  error: { message: string; type: string; code: string; param: string | null };
} {
  const def: ErrorDef = ERRORS[r.code];
  return { error: { message: publicMessage(r), type: def.type, code: r.code, param: r.param ?? null } };
}

/** Anthropic wire format: `{"type":"error","error":{"type","message"}}`. */
export function anthropicErrorBody(r: Refusal): { type: 'error'; error: { type: string; message: string } } {
  const def: ErrorDef = ERRORS[r.code];
  return { type: 'error', error: { type: def.anthropicType, message: `${publicMessage(r)} (${r.code})` } };
}
