/**
 * Short-lived and device-bound credentials on the data plane: `POST /sluice/v1/token` exchanges an
 * API key (plus, for step-up, a TOTP code; plus, for DPoP, a proof) for a JWT; `/.well-known/jwks.json`
 * publishes the public keys; `TokenVerifier` checks presented tokens (and their DPoP proofs).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkDpop, defaultReplayCache, verifyDpop } from '../auth/dpop.js';
import { isTokenRefusal, type TokenService } from '../auth/tokens.js';
import { verifyTotpShared } from '../auth/totp.js';
import { isRefusal, type Refusal, refuse } from '../core/errors.js';
import type { ApiKeyRecord, Clock, ControlStore } from '../core/ports.js';
import { type Principal, principalOf } from './auth.js';
import type { GatewayDeps, TokenVerifier } from './pipeline/deps.js';
import { authenticateRequest as authenticate } from './pipeline/stages/authenticate.js';
import { sendRefusal } from './wire.js';

/** The URL as the client addressed it, for DPoP `htu`. */
function requestUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}${request.url}`;
}

const stepUpRefusal = (why: string): Refusal =>
  refuse('SLUICE_STEP_UP_REQUIRED', why, {
    headers: {
      'www-authenticate':
        'Bearer error="insufficient_user_authentication", error_description="a fresh second factor is required"',
    },
  });

export class JwtVerifier implements TokenVerifier {
  private readonly cache = new Map<string, { record: ApiKeyRecord; until: number }>();

  constructor(
    private readonly tokens: TokenService,
    private readonly control: ControlStore,
    private readonly clock: Clock,
    /** Tier names whose policy says `dpop: required`. */
    private readonly dpopRequired: (tier: string, record: ApiKeyRecord) => boolean,
  ) {}

  invalidate(keyId: string): void {
    this.cache.delete(keyId);
  }

  async verify(
    token: string,
    req: { method: string; url: string; dpop: string | undefined; scheme: string },
  ): Promise<Principal | Refusal> {
    const claims = await this.tokens.verify(token);
    if (isTokenRefusal(claims)) return claims;
    const now = this.clock.now();
    let hit = this.cache.get(claims.keyId);
    if (!hit || hit.until <= now) {
      const record = await this.control.getKey(claims.keyId);
      if (!record) return refuse('SLUICE_INVALID_TOKEN');
      hit = { record, until: now + 1000 };
      if (this.cache.size > 100_000) this.cache.clear();
      this.cache.set(claims.keyId, hit);
    }
    const r = hit.record;
    // The key behind a token still governs it: revoking or expiring the key ends its tokens.
    if (r.revokedAt != null && r.revokedAt <= now) return refuse('SLUICE_KEY_REVOKED');
    if (r.expiresAt != null && r.expiresAt <= now) return refuse('SLUICE_KEY_EXPIRED');
    if (r.tenantId !== claims.tenantId) return refuse('SLUICE_INVALID_TOKEN');
    if (claims.jkt) {
      if (req.scheme !== 'dpop')
        return refuse(
          'SLUICE_DPOP_INVALID',
          'a DPoP-bound token must be sent as "Authorization: DPoP <token>" with a DPoP proof',
        );
      const bad = await verifyDpop(req.dpop, {
        htm: req.method,
        htu: req.url,
        accessToken: token,
        jkt: claims.jkt,
        now,
        replay: defaultReplayCache,
      });
      if (bad) return bad;
    } else if (this.dpopRequired(r.tier, r)) {
      return refuse('SLUICE_DPOP_INVALID', 'this key requires DPoP-bound tokens');
    }
    const base = principalOf(r);
    return {
      ...base,
      via: 'token',
      stepUp: claims.stepUp,
      tokenScopes: claims.scopes,
      jkt: claims.jkt ?? undefined,
    };
  }
}

export function tokenRoutes(
  tokens: TokenService,
  clock: Clock,
  dpopRequired: (tier: string, r: ApiKeyRecord) => boolean,
) {
  return (app: FastifyInstance, deps: GatewayDeps) => {
    app.get('/.well-known/jwks.json', async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return tokens.jwks();
    });
    app.post('/sluice/v1/token', async (request, reply) => {
      const rt = deps.runtime();
      const principal = await authenticate(deps, request, reply, 'openai', rt, true);
      if (!principal) return reply;
      if (principal.via !== 'key') {
        return sendRefusal(reply, 'openai', refuse('SLUICE_BAD_REQUEST', 'exchange an API key, not a token'));
      }
      const b = (request.body ?? {}) as {
        scope?: unknown;
        scopes?: unknown;
        audience?: unknown;
        expires_in?: unknown;
        otp?: unknown;
      };
      let scopes: string[] | null = null;
      const rawScopes =
        b.scopes ?? (typeof b.scope === 'string' ? b.scope.split(' ').filter(Boolean) : undefined);
      if (rawScopes !== undefined) {
        if (
          !Array.isArray(rawScopes) ||
          !rawScopes.every((x) => typeof x === 'string' && x.length <= 128) ||
          rawScopes.length > 64
        ) {
          return sendRefusal(
            reply,
            'openai',
            refuse('SLUICE_BAD_REQUEST', '"scopes" must be a list of actions', { param: 'scopes' }),
          );
        }
        scopes = rawScopes as string[];
      }
      if (b.audience !== undefined && (typeof b.audience !== 'string' || b.audience.length > 256)) {
        return sendRefusal(
          reply,
          'openai',
          refuse('SLUICE_BAD_REQUEST', '"audience" must be a string', { param: 'audience' }),
        );
      }
      if (b.expires_in !== undefined && (typeof b.expires_in !== 'number' || !(b.expires_in > 0))) {
        return sendRefusal(
          reply,
          'openai',
          refuse('SLUICE_BAD_REQUEST', '"expires_in" must be a positive number of seconds', {
            param: 'expires_in',
          }),
        );
      }
      const now = clock.now();
      let stepUp = false;
      if (b.otp !== undefined) {
        const secret = principal.record.totpSecret;
        if (!secret)
          return sendRefusal(reply, 'openai', stepUpRefusal('this key has no second factor enrolled'));
        // The replay guard is shared by every instance (Redis, else the control store).
        const r = await verifyTotpShared(secret, typeof b.otp === 'string' ? b.otp : String(b.otp), now, {
          subject: principal.keyId,
        });
        if (!r.ok) return sendRefusal(reply, 'openai', stepUpRefusal(`one-time code ${r.reason}`));
        stepUp = true;
      }
      let jkt: string | null = null;
      const proof = request.headers.dpop as string | undefined;
      if (proof) {
        const r = await checkDpop(proof, {
          htm: 'POST',
          htu: requestUrl(request),
          now,
          replay: defaultReplayCache,
        });
        if (isRefusal(r)) return sendRefusal(reply, 'openai', r);
        jkt = r.jkt;
      } else if (dpopRequired(principal.tier, principal.record)) {
        return sendRefusal(
          reply,
          'openai',
          refuse('SLUICE_DPOP_INVALID', 'this key requires a DPoP proof to mint tokens'),
        );
      }
      const minted = await tokens.mint({
        keyId: principal.keyId,
        tenantId: principal.tenantId,
        scopes,
        audience: b.audience as string | undefined,
        ttlMs: typeof b.expires_in === 'number' ? b.expires_in * 1000 : undefined,
        stepUp,
        jkt,
      });
      return {
        access_token: minted.token,
        token_type: jkt ? 'DPoP' : 'Bearer',
        expires_in: Math.max(0, Math.round((minted.expiresAt - now) / 1000)),
        scope: scopes ? scopes.join(' ') : undefined,
        step_up: stepUp,
      };
    });
  };
}
