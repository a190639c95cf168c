// Memory: resident set of one Sluice process (memory store) at idle, after `keys` requests from a
// single end user (what serving that many requests costs by itself: buffers, caches, heap growth),
// and after `keys` more from as many distinct end users (`x-sluice-end-user`), each of which leaves
// a limit bucket behind. Bytes per key = the difference between the last two, over `keys`.
import autocannon from 'autocannon';
import { request } from 'undici';
import { CHAT_BODY } from './load.mjs';
import { kill, rssKiB, sleep } from './procs.mjs';
import { createKey, GENEROUS_LIMITS, startSluice, tempDir, writeConfig } from './sluice.mjs';

const PER_USER_LIMIT = 10_000_000;

/** One request as `endUser`; returns the `remaining` Sluice reports for the per-user limit. */
async function perUserRemaining(url, key, endUser) {
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
  const h = String(res.headers.ratelimit ?? '');
  const m = /"per-user";r=(\d+)/.exec(h);
  return { status: res.statusCode, remaining: m ? Number(m[1]) : undefined, header: h };
}

function fill({ url, key, amount, connections, endUser }) {
  return new Promise((resolve, reject) => {
    const inst = autocannon(
      {
        url: `${url}/v1/chat/completions`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: CHAT_BODY,
        connections,
        amount,
        timeout: 10,
        requests: [
          {
            setupRequest(req) {
              req.headers = { ...req.headers, 'x-sluice-end-user': endUser() };
              return req;
            },
          },
        ],
      },
      (err, r) => (err ? reject(err) : resolve(r)),
    );
    setTimeout(() => inst.stop(), 600_000).unref();
  });
}

export async function runMemory({ upstreamUrl, keys = 100_000, connections = 50, core }) {
  const root = tempDir('memory');
  // A per-end-user limit high enough never to refuse: every distinct end user gets a bucket.
  const configFile = writeConfig(root, {
    upstreamUrl,
    store: { store: 'memory' },
    limits: [...GENEROUS_LIMITS, { id: 'per-user', per: 'end-user', requests: PER_USER_LIMIT, window: '1h' }],
  });
  const dataDir = `${root}/data`;
  const { key } = createKey({ dataDir, configFile });
  const proc = await startSluice({ name: 'sluice-memory-test', configFile, dataDir, core });
  try {
    await sleep(1000);
    const idleKiB = rssKiB(proc.pid);
    const same = await fill({
      url: proc.url,
      key,
      amount: keys,
      connections,
      endUser: () => 'bench-same-user',
    });
    await sleep(1000);
    const sameUserKiB = rssKiB(proc.pid);
    let n = 0;
    const distinct = await fill({
      url: proc.url,
      key,
      amount: keys,
      connections,
      endUser: () => `bench-user-${n++}`,
    });
    await sleep(1000);
    const afterKiB = rssKiB(proc.pid);
    // The buckets exist: a user seen once has one request fewer left than a new one.
    const fresh = await perUserRemaining(proc.url, key, `bench-user-fresh-${Date.now()}`);
    const seen = await perUserRemaining(proc.url, key, 'bench-user-0');
    return {
      keys,
      idleKiB,
      sameUserKiB,
      afterKiB,
      bytesPerKey: ((afterKiB - sameUserKiB) * 1024) / keys,
      ok: same['2xx'] + distinct['2xx'],
      non2xx: same.non2xx + distinct.non2xx,
      errors: same.errors + distinct.errors,
      perEndUserLimitEnforced:
        fresh.remaining === PER_USER_LIMIT - 1 && seen.remaining === PER_USER_LIMIT - 2,
      fresh,
      seen,
    };
  } finally {
    await kill(proc);
  }
}
