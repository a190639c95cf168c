/**
 * The `abuse:` section of the policy, resolved into what the engine needs.
 * Default: detection on; high-confidence detectors quarantine, the rest flag.
 */
import { z } from 'zod';
import { DETECTORS, type DetectorName } from '../core/anomaly/detectors.js';

const ms = (min: number, max: number) =>
  z.union([
    z.number().int().min(min).max(max),
    z
      .string()
      .regex(/^\d+(ms|s|m|h|d)$/)
      .transform((s) => {
        const m = /^(\d+)(ms|s|m|h|d)$/.exec(s)!;
        const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
        return Number(m[1]) * unit;
      })
      .pipe(z.number().min(min).max(max)),
  ]);

const DetectorSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** shadow: findings are recorded as flags, nothing is refused. */
  mode: z.enum(['shadow', 'enforce']).default('enforce'),
  /** auto: the detector's own suggestion (quarantine when confident, flag otherwise). */
  action: z.enum(['auto', 'flag', 'throttle', 'quarantine']).default('auto'),
  /** Findings scoring below this are ignored. */
  minScore: z.number().min(0).max(1).default(0),
});

export const AbuseSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Multiplies every detector's evidence threshold (2 = needs twice the evidence). */
    sensitivity: z.number().positive().max(100).default(1),
    /** Tenants no detector acts on. */
    exemptTenants: z.array(z.string()).default([]),
    /** How long a quarantine lasts without review (then it expires and the capability returns). */
    quarantineFor: ms(60_000, 90 * 86_400_000).default(86_400_000),
    /** How long a throttle lasts, and the rate it allows. */
    throttleFor: ms(10_000, 7 * 86_400_000).default(3_600_000),
    throttleRps: z.number().positive().default(1),
    /** A case nobody reviewed within this time is escalated (notify again). */
    escalateAfter: ms(60_000, 30 * 86_400_000).default(4 * 3_600_000),
    /** Where partners are told how to appeal (shown in the 403 message). */
    appeal: z.string().max(300).default('contact your administrator and quote the case id'),
    detectors: z.partialRecord(z.enum(DETECTORS), DetectorSchema).default({}),
  })
  .prefault({});

export type AbuseConfig = z.infer<typeof AbuseSchema>;
export type DetectorConfig = z.infer<typeof DetectorSchema>;

export function detectorConfig(cfg: AbuseConfig, d: DetectorName): DetectorConfig {
  return cfg.detectors[d] ?? { enabled: true, mode: 'enforce', action: 'auto', minScore: 0 };
}
