// Memory: resident set of one Sluice process (memory store) at idle, then after `keys` distinct
// end users have each been limited (one bucket per `x-sluice-end-user` value, all on one API key).
import autocannon from 'autocannon';
import { request } from 'undici';
import { CHAT_BODY } from './load.mjs';
import { kill, rssKiB, sleep } from './procs.mjs';
import { createKey, GENEROUS_LIMITS, startSluice, tempDir, writeConfig } from './sluice.mjs';

async function chat(url, key, endUser) {
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${key}`,
      'x-sluice-end-user': endUser,
    },
    body: CHAT_BODY,
  });
  await res.body.dump();
  return res.statusCode;
}

export async function runMemory({ upstreamUrl, keys = 100_000, connections = 50, core }) {
  const root = tempDir('memory');
  // One request per end user per hour: every distinct user leaves one bucket behind, and the
  // second request of a user is refused, which proves the limit really is per end user.
  const configFile = writeConfig(root, {
    upstreamUrl,
    store: { store: 'memory' },
    limits: [...GENEROUS_LIMITS, { id: 'per-user', per: 'end-user', requests: 1, window: '1h' }],
  });
  const dataDir = `${root}/data`;
  const { key } = createKey({ dataDir, configFile });
  const proc = await startSluice({ name: 'sluice-memory-test', configFile, dataDir, core });
  try {
    await sleep(1000);
    const idleKiB = rssKiB(proc.pid);
    let n = 0;
    const res = await new Promise((resolve, reject) => {
      const inst = autocannon(
        {
          url: `${proc.url}/v1/chat/completions`,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: CHAT_BODY,
          connections,
          amount: keys,
          timeout: 10,
          requests: [
            {
              setupRequest(req) {
                req.headers = { ...req.headers, 'x-sluice-end-user': `bench-user-${n++}` };
                return req;
              },
            },
          ],
        },
        (err, r) => (err ? reject(err) : resolve(r)),
      );
      setTimeout(() => inst.stop(), 300_000);
    });
    await sleep(1000);
    const afterKiB = rssKiB(proc.pid);
    const repeatStatus = await chat(proc.url, key, 'bench-user-0');
    const freshStatus = await chat(proc.url, key, `bench-user-fresh-${Date.now()}`);
    return {
      keys,
      idleKiB,
      afterKiB,
      bytesPerKey: ((afterKiB - idleKiB) * 1024) / keys,
      ok: res['2xx'],
      non2xx: res.non2xx,
      errors: res.errors,
      perEndUserLimitEnforced: repeatStatus === 429 && freshStatus === 200,
      repeatStatus,
      freshStatus,
    };
  } finally {
    await kill(proc);
  }
}
