/**
 * The upstream call's abort controller (`ctx.abort`). Node makes an AbortController's signal (an
 * EventTarget, a few microseconds) only when something asks for it; `aborted` answers "was this
 * call aborted?" without making it, so the stages that only ask that (record, observe-output,
 * cache) do not pay for a signal nobody listens to. The upstream gets the real signal, made when it
 * first reads it.
 */
export class CallAbort extends AbortController {
  /** True once `abort` was called (the same as `signal.aborted`: only the controller aborts its signal). */
  aborted = false;

  override abort(reason?: unknown): void {
    this.aborted = true;
    super.abort(reason);
  }
}
