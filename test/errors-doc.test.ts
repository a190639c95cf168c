import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { anthropicErrorBody, ERRORS, openAIErrorBody } from '../src/core/errors.js';

describe('error catalogue', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `(SLUICE_[A-Z0-9_]+)` \| (\d+) \| `([^`]+)` \| `([^`]+)` \| ([^|]+) \|$/gm)].map(
      (m) => [m[1], m.slice(2)],
    ),
  );

  it('docs/errors.md lists every code with its status, types and message, and nothing else', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERRORS).sort());
    for (const [code, def] of Object.entries(ERRORS)) {
      const [status, type, anthropicType, message] = rows.get(code)!;
      expect({ code, status: Number(status), type, anthropicType }).toEqual({
        code,
        status: def.status,
        type: def.type,
        anthropicType: def.anthropicType,
      });
      expect(message!.trim().startsWith(def.message)).toBe(true);
    }
  });

  it('codes are stable-looking and statuses are errors', () => {
    for (const [code, def] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^SLUICE_[A-Z0-9_]+$/);
      expect(def.status).toBeGreaterThanOrEqual(400);
    }
  });

  it('renders both wire formats', () => {
    expect(openAIErrorBody({ code: 'SLUICE_MODEL_DENIED', detail: 'gpt-4o', param: 'model' })).toEqual({
      error: {
        message: 'This key is not allowed to use this model: gpt-4o',
        type: 'permission_error',
        code: 'SLUICE_MODEL_DENIED',
        param: 'model',
      },
    });
    expect(anthropicErrorBody({ code: 'SLUICE_RATE_LIMITED' })).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: 'Rate limit reached (SLUICE_RATE_LIMITED)' },
    });
  });
});
