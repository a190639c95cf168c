import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { actionForRoute, knownActions, taskOfAction } from '../../../src/core/authz/actions.js';
import { compileGlob, compileGlobs } from '../../../src/core/authz/glob.js';
import { compileScopes, isValidScope } from '../../../src/core/authz/scopes.js';

/** Oracle: plain recursive wildcard matching, no regular expressions. */
function wild(p: string, s: string): boolean {
  if (p === '') return s === '';
  if (p[0] === '*') return wild(p.slice(1), s) || (s !== '' && wild(p, s.slice(1)));
  return s !== '' && p[0] === s[0] && wild(p.slice(1), s.slice(1));
}

describe('compileGlobs', () => {
  it('matches like a recursive wildcard oracle, for every shape of pattern list', () => {
    const alpha = fc.constantFrom('a', 'b', '.', '-', '*', '(', '?', '4');
    const pat = fc.array(alpha, { maxLength: 6 }).map((cs) => cs.join(''));
    const str = fc
      .array(fc.constantFrom('a', 'b', '.', '-', '(', '?', '4'), { maxLength: 7 })
      .map((cs) => cs.join(''));
    fc.assert(
      fc.property(fc.array(pat, { maxLength: 5 }), fc.array(str, { maxLength: 10 }), (patterns, strings) => {
        const m = compileGlobs(patterns);
        for (const s of strings)
          expect(m(s), `${JSON.stringify(patterns)} ~ ${s}`).toBe(patterns.some((p) => wild(p, s)));
      }),
      { numRuns: 2000 },
    );
  });

  it('handles the fast paths and regex metacharacters literally', () => {
    expect(compileGlob('gpt-4o*')('gpt-4o-mini')).toBe(true);
    expect(compileGlob('gpt-4o*')('gpt-4')).toBe(false);
    expect(compileGlob('*-embed')('demo-embed')).toBe(true);
    expect(compileGlob('a.b')('aXb')).toBe(false);
    expect(compileGlob('claude-*-sonnet*')('claude-3-5-sonnet-latest')).toBe(true);
    expect(compileGlobs([])('x')).toBe(false);
    expect(compileGlobs(['x', '*'])('anything')).toBe(true);
    expect(compileGlob('GPT-4o')('gpt-4o')).toBe(false);
  });
});

describe('scopes and actions', () => {
  it('scope wildcards grant families of actions', () => {
    const s = compileScopes(['chat.*', 'tasks.summarize']);
    expect(s('chat.create')).toBe(true);
    expect(s('completions.create')).toBe(false);
    expect(s('tasks.summarize')).toBe(true);
    expect(s('tasks.refine')).toBe(false);
    expect(compileScopes(['tasks.*'])('tasks.refine')).toBe(true);
    expect(compileScopes(['*'])('images.generate')).toBe(true);
    expect(isValidScope('chat.create')).toBe(true);
    expect(isValidScope('chat create')).toBe(false);
  });

  it('maps routes to actions', () => {
    expect(actionForRoute('POST', '/v1/chat/completions')).toBe('chat.create');
    expect(actionForRoute('post', '/v1/images/generations/')).toBe('images.generate');
    expect(actionForRoute('GET', '/v1/models')).toBe('models.list');
    expect(actionForRoute('POST', '/v1/tasks/summarize')).toBe('tasks.summarize');
    expect(actionForRoute('POST', '/v1/tasks/../admin')).toBeNull();
    expect(actionForRoute('GET', '/healthz')).toBeNull();
    expect(actionForRoute('POST', '/v1/messages/count_tokens')).toBe('messages.count_tokens');
    expect(actionForRoute('GET', '/v1/models/demo-model')).toBe('models.retrieve');
    expect(actionForRoute('POST', '/v1/moderations')).toBe('moderations.create');
    expect(taskOfAction('tasks.summarize')).toBe('summarize');
    expect(taskOfAction('chat.create')).toBeNull();
    expect(knownActions(['summarize'])).toContain('tasks.summarize');
    expect(actionForRoute('POST', '/v1/files')).toBe('files.create');
    expect(actionForRoute('GET', '/v1/files/file-1/content')).toBe('files.read');
    expect(actionForRoute('DELETE', '/v1/files/file-1')).toBe('files.delete');
    expect(actionForRoute('POST', '/v1/batches')).toBe('batches.create');
    expect(actionForRoute('POST', '/v1/batches/b1/cancel')).toBe('batches.cancel');
    expect(actionForRoute('GET', '/v1/messages/batches/mb1/results')).toBe('messages.batches.read');
    expect(actionForRoute('POST', '/v1/messages/batches')).toBe('messages.batches.create');
    expect(actionForRoute('GET', '/v1/files/a/b')).toBeNull();
    expect(knownActions([])).toHaveLength(20);
  });
});
