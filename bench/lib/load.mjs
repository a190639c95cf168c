// Load generation: autocannon (in this process, which the runner pins to the load core) for
// throughput and latency, and a small undici client for the streaming scenario (time to first
// byte and total time per request).
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { cpuMicros } from './procs.mjs';

export const CHAT_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Say hello in one short sentence.' },
  ],
  max_tokens: 16,
});

export const STREAM_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello in one short sentence.' }],
  max_tokens: 16,
  stream: true,
  stream_options: { include_usage: true },
});

/**
 * The chat body with the user's question numbered per request: every request carries a text no
 * earlier one did, as real traffic does, so a per-text cache (screening's memo) only helps where
 * it would in production (the system prompt, which repeats).
 */
let asked = 0;
export function chatBodyNumbered() {
  asked++;
  return `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence. (${asked})"}],"max_tokens":16}`;
}

function runAutocannon(opts) {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    // Never let a wedged target hang the run: autocannon stops itself after `duration`,
    // this is the backstop.
    const t = setTimeout(() => inst.stop(), (opts.duration + 10) * 1000);
    inst.on('done', () => clearTimeout(t));
  });
}

/**
 * Drive `target` (`{ name, url, pid, headers }`) with chat completions for `duration` seconds
 * over `connections` connections. Returns requests/s (2xx only), p50/p99 latency in ms, error
 * counts and the target process's CPU microseconds per completed request.
 */
export async function measureThroughput(target, { connections, duration, rate }) {
  const cpu0 = cpuMicros(target.pid);
  const res = await runAutocannon({
    // `rate`: a fixed total request rate (autocannon's overallRate) below saturation, where CPU per
    // request is not inflated by queueing on a busy core; otherwise as fast as the target answers.
    ...(rate ? { overallRate: rate } : {}),
    url: `${target.url}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    // Each request states its headers: autocannon's per-request objects do not inherit the top-level ones.
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...target.headers },
        setupRequest: (req) => ({ ...req, body: chatBodyNumbered() }),
      },
    ],
    connections,
    duration,
    timeout: 10,
  });
  const cpu1 = cpuMicros(target.pid);
  const ok = res['2xx'];
  const total = res.requests.total;
  return {
    rps: ok / res.duration,
    p50: res.latency.p50,
    p99: res.latency.p99,
    ok,
    non2xx: res.non2xx,
    errors: res.errors,
    timeouts: res.timeouts,
    cpuUsPerReq: total > 0 ? (cpu1 - cpu0) / total : undefined,
  };
}

/** A short unmeasured run so every target is warmed (JIT, pools, caches) before the rounds. */
export async function warmUp(target, seconds) {
  await measureThroughput(target, { connections: 10, duration: seconds });
}

export function pct(sorted, p) {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Streaming scenario: `requests` streamed chat completions, `concurrency` at a time. Returns
 * the median and p99 of time to first body byte and of total time, in ms, how many responses
 * were complete (ended with `data: [DONE]`), and the target's CPU µs per stream. With `samples`,
 * also every complete request's TTFB (ms, sorted), so rounds can be pooled.
 */
export async function measureStreaming(target, { requests, concurrency, samples = false, pool: shared }) {
  // `pool`: a caller's pool, kept open across calls (its connections stay warm), not closed here.
  const pool = shared ?? new Pool(target.url, { connections: concurrency });
  const cpu0 = cpuMicros(target.pid);
  const ttfb = [];
  const total = [];
  let complete = 0;
  let failed = 0;
  let next = 0;
  async function worker() {
    while (next < requests) {
      next++;
      const t0 = performance.now();
      try {
        const res = await pool.request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json', ...target.headers },
          body: STREAM_BODY,
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        });
        let first;
        let tail = '';
        for await (const chunk of res.body) {
          if (first === undefined) first = performance.now();
          tail = (tail + chunk.toString('utf8')).slice(-64);
        }
        const end = performance.now();
        // A stream that is not 200 or does not end with [DONE] is a failure, not a fast answer.
        if (res.statusCode !== 200 || !tail.includes('[DONE]')) {
          failed++;
          continue;
        }
        ttfb.push((first ?? end) - t0);
        total.push(end - t0);
        complete++;
      } catch {
        failed++;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu1 = cpuMicros(target.pid);
  if (!shared) await pool.close();
  ttfb.sort((a, b) => a - b);
  total.sort((a, b) => a - b);
  return {
    ttfbP50: pct(ttfb, 50),
    ttfbP99: pct(ttfb, 99),
    totalP50: pct(total, 50),
    totalP99: pct(total, 99),
    complete,
    failed,
    cpuUsPerStream: complete + failed > 0 ? (cpu1 - cpu0) / (complete + failed) : undefined,
    ...(samples ? { ttfb, total } : {}),
  };
}

/** One non-streaming chat completion through `target`; resolves to its status code. */
export async function probe(target) {
  const pool = new Pool(target.url, { connections: 1 });
  try {
    const res = await pool.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', ...target.headers },
      body: CHAT_BODY,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text.slice(0, 300) };
  } finally {
    await pool.close();
  }
}
