/**
 * First start (issue 15): the banner names the address actually bound and warns when a mock-only
 * default is reachable beyond loopback; an unknown path answers 404 in its vendor's format with a
 * hint for a doubled or missing /v1 (notFoundFor, for the gateway's not-found handler). Pure functions.
 */
import { describe, expect, it } from 'vitest';
import { dataPlaneBanner } from '../../../src/cli/serve.js';
import { anthropicErrorBody, openAIErrorBody } from '../../../src/core/errors.js';
import { notFoundFor } from '../../../src/gateway/endpoints/not-found.js';

describe('dataPlaneBanner', () => {
  it('a wildcard bind is named as such, with the local URL, and warned about when only the mock answers', () => {
    const out = dataPlaneBanner('http://127.0.0.1:7070', '0.0.0.0', 7070, true);
    expect(out).toMatch(
      /^sluice: data plane listening on http:\/\/0\.0\.0\.0:7070 \(all interfaces; from this machine: http:\/\/127\.0\.0\.1:7070\)\n/,
    );
    expect(out.split('\n').filter(Boolean)).toHaveLength(2);
    expect(out).toContain('warning: only the built-in mock upstream');
  });
  it('no warning on loopback, nor with a real upstream', () => {
    expect(dataPlaneBanner('http://127.0.0.1:7070', '127.0.0.1', 7070, true)).toBe(
      'sluice: data plane listening on http://127.0.0.1:7070\n',
    );
    expect(dataPlaneBanner('http://127.0.0.1:7070', '0.0.0.0', 7070, false)).not.toContain('warning');
    expect(dataPlaneBanner('https://[::1]:7443', '::1', 7443, true)).toBe(
      'sluice: data plane listening on https://[::1]:7443\n',
    );
  });
});

describe('notFoundFor', () => {
  it('Anthropic SDK with /v1 in its base URL: Anthropic-shaped 404, hint to drop /v1', () => {
    const nf = notFoundFor('POST', '/v1/v1/messages?beta=true');
    expect(nf.format).toBe('anthropic');
    expect(nf.suggestion).toBe('/v1/messages');
    const body = anthropicErrorBody(nf.refusal);
    expect(body.error.type).toBe('not_found_error');
    expect(body.error.message).toContain('did you mean /v1/messages?');
    expect(body.error.message).toContain('without /v1');
  });
  it('AI SDK Anthropic provider without /v1: Anthropic-shaped, hint to add /v1', () => {
    const nf = notFoundFor('POST', '/messages');
    expect(nf.format).toBe('anthropic');
    expect(nf.suggestion).toBe('/v1/messages');
    expect(anthropicErrorBody(nf.refusal).error.message).toContain('wants http://host:port/v1');
  });
  it('OpenAI SDK without /v1, and with /v1 twice', () => {
    const missing = notFoundFor('POST', '/chat/completions');
    expect(missing.format).toBe('openai');
    expect(missing.suggestion).toBe('/v1/chat/completions');
    expect(openAIErrorBody(missing.refusal).error).toMatchObject({ code: 'SLUICE_NOT_FOUND' });
    expect(notFoundFor('GET', '/v1/v1/models/demo-model').suggestion).toBe('/v1/models/demo-model');
  });
  it('an unknown path gets a plain 404 naming it, in the format of its vendor', () => {
    const nf = notFoundFor('GET', '/v1/nothing-here');
    expect(nf.format).toBe('openai');
    expect(nf.suggestion).toBeUndefined();
    expect(openAIErrorBody(nf.refusal).error.message).toContain('GET /v1/nothing-here');
    expect(notFoundFor('POST', '/v1/messages/unknown').format).toBe('anthropic');
  });
});
