import { describe, expect, it } from 'vitest';
import { type Candidate, carries, choose, compilePins } from '../../../src/core/routing/pins.js';

const subject = (o: Partial<{ action: string; tier: string; tenant: string }> = {}) => ({
  action: 'chat.create',
  tier: 'free',
  tenant: 't1',
  ...o,
});

describe('compilePins', () => {
  const pins = compilePins([
    { action: 'tasks.*', labels: { confidential: 'true' } },
    { task: 'legal', labels: { region: 'eu' } },
    { tier: 'gov', labels: { region: 'us' } },
    { tenant: 'acme', tier: 'pro', labels: { confidential: 'true' } },
  ]);

  it('no pin matches: not pinned', () => {
    expect(pins.required(subject())).toBeNull();
    // A tenant selector together with a tier selector needs both.
    expect(pins.required(subject({ tenant: 'acme' }))).toBeNull();
  });

  it('an action glob, a task and a tenant+tier pin each match their own requests', () => {
    expect(pins.required(subject({ action: 'tasks.summarize' }))).toEqual({
      labels: { confidential: 'true' },
      conflict: null,
    });
    expect(pins.required(subject({ tenant: 'acme', tier: 'pro' }))?.labels).toEqual({ confidential: 'true' });
  });

  it('matching pins add up: every label of every matching pin is required', () => {
    expect(pins.required(subject({ action: 'tasks.legal' }))).toEqual({
      labels: { confidential: 'true', region: 'eu' },
      conflict: null,
    });
  });

  it('two matching pins wanting different values of one label are a conflict', () => {
    const r = pins.required(subject({ action: 'tasks.legal', tier: 'gov' }));
    expect(r?.conflict).toBe('region');
    expect(choose([cand('eu-1', { region: 'eu', confidential: 'true' })], r).ok).toBe(false);
  });

  it('no pins at all: any is false', () => {
    expect(compilePins([]).any).toBe(false);
  });
});

function cand(name: string, labels: Record<string, string>, o: Partial<Candidate> = {}): Candidate {
  return { name, labels, available: true, serves: true, ...o };
}

describe('choose', () => {
  const conf = { labels: { confidential: 'true' }, conflict: null };

  it('carries compares every wanted label', () => {
    expect(carries({ confidential: 'true', region: 'eu' }, { confidential: 'true' })).toBe(true);
    expect(carries({ region: 'eu' }, { confidential: 'true' })).toBe(false);
    expect(carries({ confidential: 'false' }, { confidential: 'true' })).toBe(false);
  });

  it('a pinned request skips unlabelled candidates, even the first', () => {
    const c = choose([cand('public', {}), cand('tee', { confidential: 'true' })], conf);
    expect(c).toMatchObject({ ok: true, name: 'tee', passed: [{ name: 'public', why: 'labels' }] });
  });

  it('a pinned request whose only labelled candidate is open is refused, never sent to the unlabelled one', () => {
    const c = choose([cand('public', {}), cand('tee', { confidential: 'true' }, { available: false })], conf);
    expect(c).toEqual({
      ok: false,
      passed: [
        { name: 'public', why: 'labels' },
        { name: 'tee', why: 'circuit-open' },
      ],
    });
  });

  it('a second labelled candidate takes over from an open one', () => {
    const c = choose(
      [
        cand('tee-a', { confidential: 'true' }, { available: false }),
        cand('tee-b', { confidential: 'true' }),
      ],
      conf,
    );
    expect(c).toMatchObject({ ok: true, name: 'tee-b' });
  });

  it('an unpinned request passes over open circuits, and keeps its first candidate when all are open', () => {
    expect(choose([cand('a', {}, { available: false }), cand('b', {})], null)).toMatchObject({
      ok: true,
      name: 'b',
    });
    expect(
      choose([cand('a', {}, { available: false }), cand('b', {}, { available: false })], null),
    ).toMatchObject({ ok: true, name: 'a' });
  });

  it('a candidate that does not serve the endpoint is never chosen', () => {
    const c = choose([cand('emb', { confidential: 'true' }, { serves: false })], conf);
    expect(c).toEqual({ ok: false, passed: [{ name: 'emb', why: 'endpoint' }] });
  });
});
