/**
 * Sends the upstream's answer (as `screen-output` left it) and runs the end stages when it has
 * ended: a byte body at once, a stream chunk by chunk as it arrives (no buffering). A forced
 * shutdown ends an open stream with a well-formed error event in the caller's format.
 *
 * The pipeline owns the response from here: the reply is hijacked and written to the Node response
 * directly (no Fastify send path, no `Readable` around the stream, no async-iterator layers), with
 * the headers the stages set on the reply. Fastify's onResponse hooks still run on `finish`.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { refuse } from '../../core/errors.js';
import type { Usage } from '../../core/ports.js';
import { sseErrorEvent } from '../wire.js';
import type { RequestContext } from './context.js';
import { logIds } from './log-ids.js';
import { endRequest } from './runner.js';
import { storeWhenEnded } from './stages/cache.js';

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, images: 0 };

export function respond(ctx: RequestContext): void {
  const { deps, reply } = ctx;
  const res = ctx.cache && !ctx.cache.hit ? storeWhenEnded(ctx, ctx.response!) : ctx.response!;
  ctx.replied = true;
  const headers = reply.getHeaders() as OutgoingHttpHeaders;
  for (const k in res.headers) headers[k] = res.headers[k];
  reply.hijack();
  const raw = reply.raw as ServerResponse;
  const finish = (usage: Usage) => {
    ctx.detach?.();
    ctx.usage = usage;
    return endRequest(ctx);
  };
  const ended = res.usage.then(finish, () => finish(NO_USAGE));
  // Acknowledged means recorded (issue 21): with a journal, the answer's last byte leaves only once
  // the end stages have recorded the call and the journal has it on disk.
  const recorded = deps.recorded;
  if (res.body instanceof Uint8Array) {
    const bytes = res.body;
    headers['content-type'] ??= 'application/octet-stream';
    headers['content-length'] = String(bytes.byteLength);
    const send = () => {
      raw.writeHead(res.status, headers);
      raw.end(bytes);
    };
    if (recorded) ended.then(recorded).then(send, send);
    else send();
    return;
  }
  headers['cache-control'] = 'no-cache';
  headers['x-accel-buffering'] = 'no';
  raw.writeHead(res.status, headers);
  const until = recorded && (() => ended.then(recorded));
  void pump(ctx, raw, res.body, ctx.abort ?? new AbortController(), until || undefined);
}

const KILL = Symbol('kill');
type Next = IteratorResult<Uint8Array> | typeof KILL;

/**
 * Writes a stream's chunks to the response as they come, waiting for `drain` when the socket's
 * buffer is full. A forced shutdown (`deps.forceEnd`) aborts the upstream and ends the stream with a
 * well-formed error event in the caller's format; `until`, when given, is awaited after the last
 * chunk (the journal barrier: the response ends only once its records are durable). A client that
 * leaves stops the reading (the upstream call is aborted by `forward`'s close listener); a source
 * that breaks aborts the upstream and destroys the response. Each wait for the next chunk is woken
 * by the kill without `Promise.race`, which would leave one reaction per chunk on the kill promise.
 */
async function pump(
  ctx: RequestContext,
  raw: ServerResponse,
  src: AsyncIterable<Uint8Array>,
  upstream: AbortController,
  until: (() => Promise<void>) | undefined,
): Promise<void> {
  const kill = ctx.deps.forceEnd;
  const it = src[Symbol.asyncIterator]();
  let killed = false;
  let wake: ((v: typeof KILL) => void) | undefined;
  const onKill = () => {
    killed = true;
    wake?.(KILL);
  };
  if (kill) {
    if (kill.aborted) killed = true;
    else kill.addEventListener('abort', onKill, { once: true });
  }
  try {
    for (;;) {
      let n: Next;
      if (killed) n = KILL;
      else if (!kill) n = await it.next();
      else {
        n = await new Promise<Next>((resolve, reject) => {
          wake = resolve;
          it.next().then(resolve, reject);
        });
        wake = undefined;
      }
      if (raw.destroyed) return; // the client has gone: nothing more to write
      if (n === KILL) {
        upstream.abort();
        raw.write(Buffer.from(sseErrorEvent(ctx.format, refuse('SLUICE_SHUTTING_DOWN'))));
        break;
      }
      if (n.done) break;
      if (!raw.write(n.value) && !raw.destroyed) await drained(raw);
    }
  } catch (err) {
    if (raw.destroyed) return; // the client left and `forward` aborted the upstream call
    ctx.deps.logger.warn({ ...logIds(ctx), err: (err as Error).message }, 'stream to client failed');
    upstream.abort();
    raw.destroy();
    return;
  } finally {
    kill?.removeEventListener('abort', onKill);
    void it.return?.();
  }
  if (until) await until();
  raw.end();
}

/** Resolves once the response can take more (`drain`) or has closed. */
function drained(raw: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      raw.off('drain', done);
      raw.off('close', done);
      resolve();
    };
    raw.on('drain', done);
    raw.on('close', done);
  });
}
