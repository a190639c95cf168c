/**
 * Wraps an async generator so that `return()` always runs its cleanup, even when the consumer
 * gives up before the first `next()` (a plain generator that never started skips its `finally`).
 */
export function closeable<T = Uint8Array>(gen: AsyncGenerator<T>, onClose: () => void): AsyncIterable<T> {
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    onClose();
  };
  const iterator: AsyncIterator<T> = {
    next: () => gen.next(),
    async return(value?: unknown) {
      // Cleanup first: it unblocks a generator waiting on the upstream, so `gen.return` can settle.
      close();
      await gen.return(value as undefined);
      return { done: true, value: undefined };
    },
  };
  return {
    [Symbol.asyncIterator]: () => iterator,
  };
}
