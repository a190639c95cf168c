/**
 * The mock's fast paths (issue 11: `sluice simulate` speed) must answer byte for byte as the plain
 * code they replaced: the chat answer written directly vs JSON.stringify of the answer object, and
 * the reply's quoted words scanned vs split from the whole prompt.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chatCompletionJson, chatCompletionReference, mockReplyWords } from '../../src/providers/mock.js';

/** The quoted words as the mock took them before: split the whole prompt, drop empties, keep 7. */
function quotedReference(prompt: string): string[] {
  return prompt
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 7)
    .map((w) => (w.length > 32 ? `${w.slice(0, 32)}…` : w));
}

describe('mock fast paths', () => {
  it('writes the chat answer exactly as JSON.stringify of the answer object', () => {
    const plans = [
      {
        id: 'chatcmpl-r1',
        created: 1767225600,
        model: 'demo-model',
        words: ['Hi', 'there'],
        choices: 1,
        truncated: false,
        input: 9,
      },
      {
        id: 'chatcmpl-"q"\\',
        created: 0,
        model: 'm\u2028\u00e9"',
        words: ['a"b', '\n', '\u0001', '😀'],
        choices: 3,
        truncated: true,
        input: 0,
      },
      { id: 'x', created: 1, model: '', words: [], choices: 1, truncated: false, input: 12, joined: true },
      {
        id: 'x',
        created: 1,
        model: 'd',
        words: ['{"a":', '1}'],
        choices: 2,
        truncated: false,
        input: 3,
        joined: true,
      },
    ];
    for (const p of plans) expect(chatCompletionJson(p)).toBe(chatCompletionReference(p));
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.array(fc.string({ unit: 'binary' }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 16 }),
        fc.boolean(),
        fc.nat(),
        fc.nat(),
        (id, model, words, choices, truncated, input, created) => {
          const p = { id, model, words, choices, truncated, input, created };
          expect(chatCompletionJson(p)).toBe(chatCompletionReference(p));
        },
      ),
    );
  });

  it('quotes the same first words of the prompt as splitting the whole prompt did', () => {
    const prompts = [
      '',
      '   ',
      '  lead and trail  ',
      'tabs\tand\nnewlines\r\nand\u00a0nbsp\u2028ls\u3000ideographic\ufeffbom',
      `${'w'.repeat(40)} short ${'x'.repeat(33)} a b c d e f g h`,
      'one two three four five six seven eight nine',
    ];
    for (const p of prompts) {
      const words = mockReplyWords(p, 30);
      const q = quotedReference(p);
      const expected = ['This', 'is', 'a', 'mock', 'reply', 'from', q.length === 0 ? 'Sluice.' : 'Sluice'];
      if (q.length > 0) {
        expected.push('to:');
        if (q.length > 6) {
          q.length = 6;
          q[5] = `${q[5]}...`;
        }
        expected.push(...q);
      }
      expect(words.slice(0, expected.length)).toEqual(expected);
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (p) => {
        const q = quotedReference(p);
        const words = mockReplyWords(p, 7 + 1 + Math.min(q.length, 6));
        expect(words.slice(8)).toEqual(q.length > 6 ? [...q.slice(0, 5), `${q[5]}...`] : q);
      }),
    );
  });
});
