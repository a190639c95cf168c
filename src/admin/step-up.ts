/**
 * Step-up for destructive management operations (revoke all, delete tenant, policy rollback): the
 * admin user must have a TOTP factor enrolled and send a fresh code in `x-sluice-otp`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { verifyTotpShared } from '../auth/totp.js';
import { refuse } from '../core/errors.js';
import type { Clock } from '../core/ports.js';
import { sendAdminError } from './guard.js';

const HEADER =
  'Bearer error="insufficient_user_authentication", error_description="send a fresh TOTP code in x-sluice-otp"';

/** Returns true when the request carries a valid fresh second factor; otherwise answers 401 and returns false. */
/** Shared by every instance: a code accepted here is refused as a replay on the others (auth/totp.ts). */
export async function stepUpOk(request: FastifyRequest, reply: FastifyReply, clock: Clock): Promise<boolean> {
  const u = request.admin;
  const code = request.headers['x-sluice-otp'];
  if (!u?.totpSecret) {
    reply.header('www-authenticate', HEADER);
    sendAdminError(
      reply,
      refuse('SLUICE_STEP_UP_REQUIRED', 'enroll a TOTP factor first (POST /admin/v1/me/totp)'),
    );
    return false;
  }
  const r = await verifyTotpShared(u.totpSecret, typeof code === 'string' ? code : undefined, clock.now(), {
    subject: `admin:${u.id}`,
  });
  if (!r.ok) {
    reply.header('www-authenticate', HEADER);
    sendAdminError(reply, refuse('SLUICE_STEP_UP_REQUIRED', `one-time code ${r.reason}`));
    return false;
  }
  return true;
}
