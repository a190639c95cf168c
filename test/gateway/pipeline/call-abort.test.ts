import { describe, expect, it } from 'vitest';
import { CallAbort } from '../../../src/gateway/pipeline/call-abort.js';

describe('CallAbort (the upstream call abort controller)', () => {
  it('answers aborted without making a signal, and a signal made later is already aborted with the reason', () => {
    const ac = new CallAbort();
    expect(ac.aborted).toBe(false);
    const reason = new Error('client left');
    ac.abort(reason);
    expect(ac.aborted).toBe(true);
    expect(ac.signal.aborted).toBe(true);
    expect(ac.signal.reason).toBe(reason);
  });

  it('a signal taken before the abort hears it, and aborted agrees with it', () => {
    const ac = new CallAbort();
    const signal = ac.signal;
    let heard = 0;
    signal.addEventListener('abort', () => heard++);
    expect(ac.aborted).toBe(signal.aborted);
    ac.abort();
    ac.abort();
    expect(heard).toBe(1);
    expect(ac.aborted).toBe(true);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(DOMException);
  });
});
