/**
 * Stage `authenticate`: who is calling. An API key (`sk-sluice-…`, Bearer or `x-api-key`) or a JWT
 * access token (Bearer or DPoP). Writes `ctx.principal`. Refuses a missing or bad credential, a key
 * that must use DPoP-bound tokens, and an address over its failure budget; a failure counts against
 * the address.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isRefusal, type Refusal, refuse } from '../../../core/errors.js';
import type { Principal } from '../../auth.js';
import { clientIpOf } from '../../client-ip.js';
import type { Runtime } from '../../runtime.js';
import type { WireFormat } from '../../wire.js';
import { newContext, type RequestContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { runStages } from '../runner.js';

export async function authenticate(ctx: RequestContext): Promise<Refusal | undefined> {
  const { deps, request, rt } = ctx;
  const limited = deps.authFailures?.check(ctx.ip);
  if (limited) {
    // abuse hook: an address over its failure budget is still presenting credentials (stuffing).
    deps.abuse?.authFailed({
      ip: ctx.ip,
      presented: request.headers.authorization ?? (request.headers['x-api-key'] as string | undefined),
      userAgent: (request.headers['user-agent'] as string | undefined) ?? null,
    });
    return limited;
  }
  const auth = request.headers.authorization;
  let presented: string | undefined;
  let scheme = 'bearer';
  if (auth) {
    const sp = auth.indexOf(' ');
    scheme = sp > 0 ? auth.slice(0, sp).toLowerCase() : '';
    presented = sp > 0 ? auth.slice(sp + 1).trim() : undefined;
  } else {
    const x = request.headers['x-api-key'];
    if (typeof x === 'string') presented = x.trim();
  }
  let result: Principal | Refusal;
  if (!presented) result = refuse('SLUICE_MISSING_KEY');
  else if (presented.startsWith('sk-sluice-') && scheme === 'bearer')
    result = await deps.auth.authenticate(presented);
  else if ((scheme === 'bearer' || scheme === 'dpop') && presented.split('.').length === 3 && deps.tokens) {
    result = await deps.tokens.verify(presented, {
      method: request.method,
      url: `${request.protocol}://${request.host}${request.url}`,
      dpop: request.headers.dpop as string | undefined,
      scheme,
    });
  } else result = refuse('SLUICE_INVALID_KEY');
  // A key bound to DPoP is only good for minting bound tokens, never as a bearer credential itself.
  if (
    !ctx.exchange &&
    !isRefusal(result) &&
    result.via === 'key' &&
    (result.record.dpop === 'required' || rt.cfg.tiers[result.tier]?.dpop === 'required')
  ) {
    result = refuse(
      'SLUICE_DPOP_INVALID',
      'this key requires DPoP-bound tokens: exchange it at POST /sluice/v1/token with a DPoP proof',
      { keyId: result.keyId },
    );
  }
  if (isRefusal(result)) {
    deps.authFailures?.fail(ctx.ip);
    // abuse hook: failed credentials per IP range (credential stuffing); the credential is hashed there.
    if (
      result.code === 'SLUICE_INVALID_KEY' ||
      result.code === 'SLUICE_KEY_REVOKED' ||
      result.code === 'SLUICE_KEY_EXPIRED' ||
      result.code === 'SLUICE_MISSING_KEY'
    )
      deps.abuse?.authFailed({
        ip: ctx.ip,
        presented,
        userAgent: (request.headers['user-agent'] as string | undefined) ?? null,
      });
    if (result.code === 'SLUICE_STEP_UP_REQUIRED' || result.code === 'SLUICE_INVALID_TOKEN') {
      result.headers = { ...result.headers, 'www-authenticate': wwwAuthenticate(result) };
    }
    return result;
  }
  ctx.principal = result;
  return undefined;
}

function wwwAuthenticate(r: Refusal): string {
  if (r.code === 'SLUICE_STEP_UP_REQUIRED') {
    return 'Bearer error="insufficient_user_authentication", error_description="A token minted with a fresh second factor is required"';
  }
  return 'Bearer error="invalid_token"';
}

/**
 * Authentication for routes outside the pipeline (the token endpoint): runs the stage alone. On a
 * refusal it has audited and answered, and resolves to undefined.
 */
export async function authenticateRequest(
  deps: GatewayDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  format: WireFormat,
  rt: Runtime,
  exchange = false,
): Promise<Principal | undefined> {
  const ctx = newContext(deps, request, reply, {
    endpoint: null,
    action: 'auth',
    format,
    rt,
    ip: clientIpOf(rt, request),
    end: [],
    exchange,
  });
  await runStages(ctx, [authenticate]);
  return ctx.replied ? undefined : (ctx.principal ?? undefined);
}
