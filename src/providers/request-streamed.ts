/**
 * A streamed upstream call over `pool.dispatch`: the response body is handed over as a pull-based
 * source of chunks, with no response stream object in between. `pool.request` wraps every body in a
 * Readable whose async iterator costs a promise, a `read()` and 'readable' events per chunk, on
 * every chunk of every streamed answer; here a chunk costs one queue push and, when the consumer
 * is already waiting, one wake-up. Backpressure: past `HIGH_WATER` bytes queued the connection is
 * paused (`controller.pause()`) until the consumer has read half of them.
 */
import type { Pool } from 'undici';

/** A response body as chunks in arrival order. `destroy()` aborts the call; iteration then ends. */
export interface ChunkSource extends AsyncIterable<Uint8Array> {
  readonly destroyed: boolean;
  destroy(): void;
}

export interface StreamedResponse {
  statusCode: number;
  /** Header names lowercased; repeated headers as arrays (as `Pool.request` gives them). */
  headers: Record<string, string | string[] | undefined>;
  body: ChunkSource;
}

/** 64 KiB queued: pause reading from the upstream until the consumer catches up. */
const HIGH_WATER = 64 * 1024;

interface Controller {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
  readonly paused: boolean;
}

/**
 * Sends one request and resolves with the status and headers as soon as they arrive; the body
 * follows through `body`. Rejects (with the raw transport error, or `signal`'s reason when it
 * aborted) only before the headers. After them, a transport error is thrown by the body's iterator
 * (the raw undici error, for the caller to map), and `signal` aborting ends the call.
 */
export function requestStreamed(
  pool: Pool,
  opts: { path: string; method: 'POST'; headers: Record<string, string>; body: string },
  signal: AbortSignal,
): Promise<StreamedResponse> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<StreamedResponse>((resolve, reject) => {
    let controller: Controller | undefined;
    let started = false;
    let ended = false;
    let destroyed = false;
    let failure: unknown;
    const queue: Uint8Array[] = [];
    let head = 0;
    let queued = 0;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const onAbort = (): void => controller?.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const finished = (): void => {
      ended = true;
      signal.removeEventListener('abort', onAbort);
      notify();
    };
    const body: ChunkSource = {
      get destroyed() {
        return destroyed;
      },
      destroy() {
        if (destroyed) return;
        destroyed = true;
        queue.length = 0;
        head = 0;
        queued = 0;
        if (!ended) controller?.abort(new Error('response body destroyed'));
        finished();
      },
      [Symbol.asyncIterator]() {
        return {
          next: async (): Promise<IteratorResult<Uint8Array>> => {
            for (;;) {
              if (head < queue.length) {
                const chunk = queue[head++]!;
                if (head === queue.length) {
                  queue.length = 0;
                  head = 0;
                }
                queued -= chunk.length;
                if (controller?.paused && queued <= HIGH_WATER / 2) controller.resume();
                return { done: false, value: chunk };
              }
              if (failure !== undefined && !destroyed) {
                const err = failure;
                failure = undefined;
                throw err;
              }
              if (ended) return { done: true, value: undefined };
              await new Promise<void>((r) => {
                wake = r;
              });
            }
          },
          return: async (): Promise<IteratorResult<Uint8Array>> => {
            body.destroy();
            return { done: true, value: undefined };
          },
        };
      },
    };
    pool.dispatch(opts, {
      onRequestStart(c) {
        controller = c as unknown as Controller;
        if (signal.aborted) c.abort(signal.reason);
      },
      onResponseStart(_c, statusCode, headers) {
        started = true;
        resolve({ statusCode, headers: headers as StreamedResponse['headers'], body });
      },
      onResponseData(c, chunk: Buffer) {
        if (destroyed) return;
        queue.push(chunk);
        queued += chunk.length;
        if (queued >= HIGH_WATER) c.pause();
        notify();
      },
      onResponseEnd() {
        finished();
      },
      onResponseError(_c, err) {
        if (!started) {
          signal.removeEventListener('abort', onAbort);
          reject(err);
          return;
        }
        if (!destroyed) failure = err;
        finished();
      },
    });
  });
}

/** Reads a whole streamed body, refusing more than `max` bytes (`tooLarge` is thrown then). */
export async function readAll(body: ChunkSource, max: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}
