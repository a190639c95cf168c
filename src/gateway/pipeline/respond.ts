/**
 * Sends the upstream's answer (as `screen-output` left it) and runs the end stages when it has
 * ended: a byte body at once, a stream chunk by chunk as it arrives (no buffering). A forced
 * shutdown ends an open stream with a well-formed error event in the caller's format.
 */
import { Readable } from 'node:stream';
import { refuse } from '../../core/errors.js';
import type { Usage } from '../../core/ports.js';
import { sseErrorEvent, type WireFormat } from '../wire.js';
import type { RequestContext } from './context.js';
import { logIds } from './log-ids.js';
import { endRequest } from './runner.js';
import { storeWhenEnded } from './stages/cache.js';

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, images: 0 };

export function respond(ctx: RequestContext): void {
  const { deps, reply } = ctx;
  const res = ctx.cache && !ctx.cache.hit ? storeWhenEnded(ctx, ctx.response!) : ctx.response!;
  ctx.replied = true;
  reply.code(res.status);
  reply.headers(res.headers);
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
    const bytes = Buffer.from(res.body.buffer, res.body.byteOffset, res.body.byteLength);
    if (recorded) {
      const send = () => void reply.send(bytes);
      ended.then(recorded).then(send, send);
      return;
    }
    reply.send(bytes);
    return;
  }
  reply.header('cache-control', 'no-cache');
  reply.header('x-accel-buffering', 'no');
  const ac = ctx.abort ?? new AbortController();
  // One pass-through layer for both the shutdown guard and the journal barrier (each async
  // generator layer costs promises on every chunk); none when neither applies.
  const body =
    deps.forceEnd || recorded
      ? streamOut(res.body, deps.forceEnd, ctx.format, ac, recorded && (() => ended.then(recorded)))
      : res.body;
  const stream = Readable.from(body, { objectMode: false, highWaterMark: 16 * 1024 });
  stream.on('error', (err) => {
    deps.logger.warn({ ...logIds(ctx), err: err.message }, 'stream to client failed');
    ac.abort();
  });
  reply.send(stream);
}

const KILL = Symbol('kill');

/**
 * Passes a stream's chunks on as they come. A forced shutdown (`kill`) aborts the upstream and ends
 * the stream with a well-formed error event in the caller's format; `until`, when given, is awaited
 * after the last chunk (the journal barrier: the response ends only once its records are durable).
 * Each wait for the next chunk is woken by the kill without `Promise.race`, which would leave one
 * reaction per chunk on the never-settling kill promise for the life of the stream.
 */
async function* streamOut(
  src: AsyncIterable<Uint8Array>,
  kill: AbortSignal | undefined,
  format: WireFormat,
  upstream: AbortController,
  until: (() => Promise<void>) | undefined,
): AsyncGenerator<Uint8Array> {
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
      let n: IteratorResult<Uint8Array> | typeof KILL;
      if (!kill) n = await it.next();
      else if (killed) n = KILL;
      else {
        n = await new Promise<IteratorResult<Uint8Array> | typeof KILL>((resolve, reject) => {
          wake = resolve;
          it.next().then(resolve, reject);
        });
        wake = undefined;
      }
      if (n === KILL) {
        upstream.abort();
        yield Buffer.from(sseErrorEvent(format, refuse('SLUICE_SHUTTING_DOWN')));
        break;
      }
      if (n.done) break;
      yield n.value;
    }
  } finally {
    kill?.removeEventListener('abort', onKill);
    void it.return?.();
  }
  if (until) await until();
}
