/**
 * Policy as code: validate, diff against the running version, store numbered versions (hash,
 * author, message), roll back. Shared by `sluice policy ...` and `/admin/v1/policy`.
 * A source that fails validation is refused with its line numbers and nothing is stored.
 */
import { createHash } from 'node:crypto';
import { diffPolicies, type PolicyChange } from '../config/diff.js';
import { ConfigError, parseConfig } from '../config/load.js';
import { DEFAULT_SOURCE } from '../config/resolve.js';
import type { SluiceConfig } from '../config/schema.js';
import type { Clock, ControlStore, PolicyVersion } from '../core/ports.js';

export class PolicyService {
  constructor(
    private readonly control: ControlStore,
    private readonly clock: Clock,
    /** Tells every instance a new version is current (Redis pub/sub when configured). */
    private readonly publish: (version: number) => void | Promise<void>,
    /** Loads what the policy names (Cedar file, reputation lists, geo database); throws to refuse it. */
    private readonly validateContext?: (cfg: SluiceConfig) => Promise<void>,
  ) {}

  async running(): Promise<PolicyVersion | undefined> {
    return this.control.latestPolicyVersion();
  }

  /** Changes `source` would make to the running version (validates `source` first; throws ConfigError). */
  async diff(source: string, file = 'policy'): Promise<{ from: number | null; changes: PolicyChange[] }> {
    const next = parseConfig(source, file);
    if (this.validateContext) {
      try {
        await this.validateContext(next);
      } catch (err) {
        const e = err as Error & { errors?: string[] };
        throw new ConfigError(`${file}: ${e.errors ? `Cedar policies: ${e.errors.join('; ')}` : e.message}`);
      }
    }
    const cur = await this.running();
    const prev = parseConfig(
      cur?.source ?? DEFAULT_SOURCE,
      cur ? `policy v${cur.version}` : 'built-in default',
    );
    return { from: cur?.version ?? null, changes: diffPolicies(prev, next) };
  }

  /** Validates and stores `source` as the next version (unless identical to the running one); returns it. */
  async apply(
    source: string,
    author: string,
    message: string,
    file = 'policy',
  ): Promise<{ version: number; unchanged: boolean; changes: PolicyChange[] }> {
    const { changes } = await this.diff(source, file);
    const hash = createHash('sha256').update(source).digest('hex');
    const cur = await this.running();
    if (cur && cur.hash === hash) return { version: cur.version, unchanged: true, changes: [] };
    const v = await this.control.savePolicyVersion({
      hash,
      source,
      author,
      message,
      createdAt: this.clock.now(),
    });
    await this.publish(v.version);
    return { version: v.version, unchanged: false, changes };
  }

  /** Makes an earlier version current again by storing its source as a new version. Default: the one before the running one. */
  async rollback(
    author: string,
    version?: number,
  ): Promise<{ version: number; restored: number; changes: PolicyChange[] }> {
    const cur = await this.running();
    if (!cur) throw new PolicyServiceError('no policy version is stored yet');
    const target = version ?? cur.version - 1;
    const old = target >= 1 ? await this.control.getPolicyVersion(target) : undefined;
    if (!old) throw new PolicyServiceError(`no policy version ${target}`);
    const r = await this.apply(old.source, author, `rollback to version ${target}`, `policy v${target}`);
    return { version: r.version, restored: target, changes: r.changes };
  }

  history(): Promise<Omit<PolicyVersion, 'source'>[]> {
    return this.control.listPolicyVersions();
  }
}

export class PolicyServiceError extends Error {}
