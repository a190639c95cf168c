/**
 * The policy snapshot the request path runs on, built from a config: what `serve` builds on start and
 * on every reload, and what `sluice simulate` runs on. Its own module so the simulation does not
 * load the whole server (admin plane, portal, metrics) to get it.
 */
import type { SluiceConfig } from '../config/schema.js';
import { compileRuntime, type Runtime } from '../gateway/runtime.js';
import { accessPolicyFor, type ContextLoader, limitPolicyFor } from './policy.js';

export async function buildRuntime(
  cfg: SluiceConfig,
  version: number | null,
  context: ContextLoader,
): Promise<Runtime> {
  return compileRuntime(cfg, version, limitPolicyFor(cfg), accessPolicyFor(cfg, await context.load(cfg)));
}
