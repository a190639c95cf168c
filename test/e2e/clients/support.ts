/**
 * Shared setup of the client suites: a `sluice serve` process (embedded default unless a config is
 * given) and one key for it. Every client is the real current release from devDependencies.
 */
import { createKey, type SluiceProcess, startSluice, tempDir, writeConfig } from '../harness.js';

export interface ClientEnv {
  s: SluiceProcess;
  key: string;
  /** Data-plane origin, without /v1 (the Anthropic SDK and LangChain's Anthropic want this). */
  origin: string;
  /** Origin + /v1 (the OpenAI SDK, the AI SDK providers and LangChain's OpenAI want this). */
  v1: string;
}

export async function startClients(yaml?: string, tier = 'default'): Promise<ClientEnv> {
  const dir = tempDir('sluice-clients-');
  const config = yaml ? writeConfig(dir, yaml) : undefined;
  const s = await startSluice({ dataDir: dir, config });
  const { key } = await createKey(s, [], 'acme', tier);
  return { s, key, origin: s.url, v1: `${s.url}/v1` };
}
