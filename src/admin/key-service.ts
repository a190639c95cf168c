/**
 * Key lifecycle shared by the CLI and the management API: create (the secret is returned once),
 * revoke, rotate with a grace period, update grants. Tenants named on create are created on demand.
 */
import { newTotpSecret, otpauthUrl } from '../auth/totp.js';
import { parseDuration } from '../config/schema.js';
import { formatKey, hashSecret, newKeyId, newSecret } from '../core/keys/api-key.js';
import type { ApiKeyRecord, Clock, ControlStore } from '../core/ports.js';

export interface CreateKeyInput {
  tenant: string;
  tier: string;
  project?: string | null;
  name?: string | null;
  owner?: string | null;
  notes?: string | null;
  /** `30d`, `12h`, or an absolute ms timestamp. */
  expires?: string | number | null;
  scopes?: string[] | null;
  models?: string[] | null;
  allowIps?: string[] | null;
  denyIps?: string[] | null;
  dpop?: 'required' | 'optional' | null;
}

export class KeyServiceError extends Error {
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

/** The public view of a key record: never the hashes or the TOTP secret. */
export function publicKeyView(k: ApiKeyRecord): Record<string, unknown> {
  return {
    id: k.id,
    tenant: k.tenantId,
    project: k.projectId ?? null,
    tier: k.tier,
    name: k.name ?? null,
    owner: k.owner ?? null,
    notes: k.notes ?? null,
    scopes: k.scopes ?? null,
    models: k.models ?? null,
    allowIps: k.allowIps ?? null,
    denyIps: k.denyIps ?? null,
    dpop: k.dpop ?? null,
    totp: k.totpSecret ? 'enrolled' : null,
    createdAt: iso(k.createdAt),
    expiresAt: iso(k.expiresAt),
    revokedAt: iso(k.revokedAt),
    rotationGraceEndsAt: iso(k.prevExpiresAt),
    lastUsedAt: iso(k.lastUsedAt),
    lastUsedIp: k.lastUsedIp ?? null,
    status: k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt <= Date.now() ? 'expired' : 'active',
  };
}

function iso(ms: number | null | undefined): string | null {
  return ms == null ? null : new Date(ms).toISOString();
}

function expiryOf(expires: CreateKeyInput['expires'], now: number): number | null {
  if (expires == null || expires === '') return null;
  if (typeof expires === 'number') return expires;
  const d = parseDuration(expires);
  if (d !== undefined) return now + d;
  const t = Date.parse(expires);
  if (Number.isNaN(t))
    throw new KeyServiceError('invalid', `"${expires}" is neither a duration (30d) nor a date`);
  return t;
}

export class KeyService {
  constructor(
    private readonly control: ControlStore,
    private readonly pepper: Buffer,
    private readonly clock: Clock,
    private readonly tiers: () => string[],
    /** Told of every rotation (scheduled rotation counts a secret's age from here). */
    private readonly onRotated?: (id: string, at: number) => Promise<void>,
  ) {}

  async create(input: CreateKeyInput): Promise<{ record: ApiKeyRecord; key: string }> {
    if (!input.tenant || !/^[A-Za-z0-9_.-]{1,64}$/.test(input.tenant)) {
      throw new KeyServiceError('invalid', 'tenant must be 1-64 letters, digits, _ . -');
    }
    if (!this.tiers().includes(input.tier)) {
      throw new KeyServiceError(
        'invalid',
        `unknown tier "${input.tier}" (the policy has: ${this.tiers().join(', ')})`,
      );
    }
    const now = this.clock.now();
    if (!(await this.control.getTenant(input.tenant))) {
      await this.control.createTenant({ id: input.tenant, name: input.tenant, createdAt: now });
    }
    if (input.project) {
      const p = await this.control.getProject(input.project);
      if (!p)
        await this.control.createProject({
          id: input.project,
          tenantId: input.tenant,
          name: input.project,
          createdAt: now,
        });
      else if (p.tenantId !== input.tenant)
        throw new KeyServiceError('invalid', `project "${input.project}" belongs to another tenant`);
    }
    const id = newKeyId();
    const secret = newSecret();
    const record: ApiKeyRecord = {
      id,
      hash: hashSecret(this.pepper, secret),
      tenantId: input.tenant,
      projectId: input.project ?? null,
      tier: input.tier,
      name: input.name ?? null,
      owner: input.owner ?? null,
      notes: input.notes ?? null,
      scopes: input.scopes ?? null,
      models: input.models ?? null,
      allowIps: input.allowIps ?? null,
      denyIps: input.denyIps ?? null,
      dpop: input.dpop ?? null,
      expiresAt: expiryOf(input.expires, now),
      createdAt: now,
    };
    await this.control.createKey(record);
    return { record, key: formatKey(id, secret) };
  }

  async get(id: string): Promise<ApiKeyRecord> {
    const k = await this.control.getKey(id);
    if (!k) throw new KeyServiceError('not-found', `no key "${id}"`);
    return k;
  }

  async revoke(id: string): Promise<ApiKeyRecord> {
    const k = await this.get(id);
    if (!k.revokedAt) await this.control.updateKey(id, { revokedAt: this.clock.now() });
    return this.get(id);
  }

  /**
   * New secret; the old one keeps working until the grace period ends (0: immediately dead).
   * `secret` is given by a scheduled rotation that delivered it before storing it.
   */
  async rotate(
    id: string,
    grace: string | number = '24h',
    secret: string = newSecret(),
  ): Promise<{ record: ApiKeyRecord; key: string }> {
    const k = await this.get(id);
    if (k.revokedAt) throw new KeyServiceError('conflict', `key "${id}" is revoked`);
    const graceMs = typeof grace === 'number' ? grace : parseDuration(grace);
    if (graceMs === undefined) throw new KeyServiceError('invalid', `"${grace}" is not a duration`);
    const now = this.clock.now();
    await this.control.updateKey(id, {
      hash: hashSecret(this.pepper, secret),
      prevHash: k.hash,
      prevExpiresAt: now + graceMs,
    });
    await this.onRotated?.(id, now);
    return { record: await this.get(id), key: formatKey(id, secret) };
  }

  /** Enrolls (or replaces) the key's TOTP second factor; the secret is returned once. */
  async enrollTotp(id: string): Promise<{ secret: string; otpauthUrl: string }> {
    const k = await this.get(id);
    if (k.revokedAt) throw new KeyServiceError('conflict', `key "${id}" is revoked`);
    const secret = newTotpSecret();
    await this.control.updateKey(id, { totpSecret: secret });
    return { secret, otpauthUrl: otpauthUrl(secret, `${k.tenantId}:${k.id}`) };
  }

  async update(
    id: string,
    patch: Pick<
      CreateKeyInput,
      'scopes' | 'models' | 'allowIps' | 'denyIps' | 'name' | 'owner' | 'notes' | 'dpop' | 'expires'
    >,
  ): Promise<ApiKeyRecord> {
    await this.get(id);
    const p: Partial<ApiKeyRecord> = {};
    for (const f of ['scopes', 'models', 'allowIps', 'denyIps', 'name', 'owner', 'notes', 'dpop'] as const) {
      if (patch[f] !== undefined) (p as Record<string, unknown>)[f] = patch[f];
    }
    if (patch.expires !== undefined) p.expiresAt = expiryOf(patch.expires, this.clock.now());
    await this.control.updateKey(id, p);
    return this.get(id);
  }
}
