/**
 * The process guard (src/wiring/process-guard.ts): a dependency's uncaught error is logged and
 * counted and the process stays up; any other uncaught error (a programming error) exits 1.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { installProcessGuard, isDependencyError } from '../../src/wiring/process-guard.js';

function fixture() {
  const target = new EventEmitter();
  const logs: { level: string; msg: string }[] = [];
  const counted: string[] = [];
  const exits: number[] = [];
  let t = 0;
  const remove = installProcessGuard({
    target,
    log: {
      error: (_o, msg) => logs.push({ level: 'error', msg }),
      fatal: (_o, msg) => logs.push({ level: 'fatal', msg }),
    },
    count: (k) => counted.push(k),
    exit: (c) => exits.push(c),
    now: () => t,
    quietMs: 1000,
  });
  return { target, logs, counted, exits, remove, advance: (ms: number) => (t += ms) };
}

describe('process guard', () => {
  it('contains a pg 57P01 and a socket reset: counted, logged once per quiet period, no exit', () => {
    const f = fixture();
    const pgErr = Object.assign(new Error('terminating connection due to unexpected postmaster exit'), {
      code: '57P01',
    });
    f.target.emit('uncaughtException', pgErr);
    f.target.emit('uncaughtException', pgErr);
    f.target.emit('unhandledRejection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    expect(f.exits).toEqual([]);
    expect(f.counted).toEqual(['exception', 'exception', 'rejection']);
    expect(f.logs.filter((l) => l.level === 'error').length).toBe(2);
    f.advance(1000);
    f.target.emit('uncaughtException', pgErr);
    expect(f.logs.filter((l) => l.level === 'error').length).toBe(3);
  });

  it('exits 1 on a programming error', () => {
    const f = fixture();
    f.target.emit('uncaughtException', new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(f.exits).toEqual([1]);
    expect(f.logs[0]?.level).toBe('fatal');
    f.target.emit('unhandledRejection', new RangeError('bad'));
    expect(f.exits).toEqual([1, 1]);
  });

  it('classifies SQLite busy and ioredis retry exhaustion as dependency errors', () => {
    expect(isDependencyError(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }))).toBe(
      true,
    );
    expect(isDependencyError(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe(
      true,
    );
    expect(isDependencyError(new Error('Connection is closed.'))).toBe(true);
    expect(isDependencyError(new Error('undefined is not a function'))).toBe(false);
    expect(isDependencyError('a string')).toBe(false);
  });

  it('removing the guard detaches its listeners', () => {
    const f = fixture();
    f.remove();
    expect(f.target.listenerCount('uncaughtException')).toBe(0);
    expect(f.target.listenerCount('unhandledRejection')).toBe(0);
  });
});
