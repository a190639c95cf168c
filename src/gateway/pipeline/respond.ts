/**
 * Sends the upstream's answer (as `screen-output` left it) and runs the end stages when it has
 * ended: a byte body at once, a stream chunk by chunk as it arrives (no buffering). A forced
 * shutdown ends an open stream with a well-formed error event in the caller's format.
 */
import { Readable } from 'node:stream';
import { refuse } from '../../core/errors.js';
import type { Usage } from '../../core/ports.js';
import { endAfter } from '../../stores/journal.js';
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
  const passed = deps.forceEnd ? guarded(res.body, deps.forceEnd, ctx.format, ac) : res.body;
  const body = recorded ? endAfter(passed, () => ended.then(recorded)) : passed;
  const stream = Readable.from(body, { objectMode: false, highWaterMark: 16 * 1024 });
  stream.on('error', (err) => {
    deps.logger.warn({ ...logIds(ctx), err: err.message }, 'stream to client failed');
    ac.abort();
  });
  reply.send(stream);
}

/** Passes a stream through until a forced shutdown, which ends it with a well-formed error event. */
async function* guarded(
  src: AsyncIterable<Uint8Array>,
  kill: AbortSignal,
  format: WireFormat,
  upstream: AbortController,
): AsyncGenerator<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  let onKill: () => void = () => {};
  const killed = new Promise<'kill'>((resolve) => {
    onKill = () => resolve('kill');
    if (kill.aborted) onKill();
    else kill.addEventListener('abort', onKill, { once: true });
  });
  try {
    for (;;) {
      const n = await Promise.race([it.next(), killed]);
      if (n === 'kill') {
        upstream.abort();
        yield Buffer.from(sseErrorEvent(format, refuse('SLUICE_SHUTTING_DOWN')));
        return;
      }
      if (n.done) return;
      yield n.value;
    }
  } finally {
    kill.removeEventListener('abort', onKill);
    void it.return?.();
  }
}
