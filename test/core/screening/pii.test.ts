import { describe, expect, it } from 'vitest';
import { detectPii } from '../../../src/core/screening/pii.js';

const kinds = (t: string, k?: string[]) => detectPii(t, k).map((f) => f.kind);

describe('detectPii', () => {
  it('finds e-mail addresses with spans', () => {
    expect(detectPii('write to jane.doe@example.org today')).toEqual([
      { detector: 'pii', kind: 'email', start: 9, end: 29 },
    ]);
    expect(kinds('https://user:pass@example.org')).not.toContain('email');
  });

  it('accepts payment cards only when Luhn and the issuer prefix agree', () => {
    expect(kinds('card 4111 1111 1111 1111 exp 12/29')).toEqual(['card']);
    expect(kinds('card 4111 1111 1111 1112')).toEqual([]);
    expect(kinds('order 1234567890123452')).toEqual([]);
  });

  it('accepts IBANs only with a valid mod-97 checksum and country length', () => {
    expect(kinds('IBAN DE89 3704 0044 0532 0130 00 please')).toEqual(['iban']);
    expect(kinds('IBAN DE89 3704 0044 0532 0130 01')).not.toContain('iban');
    expect(kinds('GB82WEST12345698765432')).toEqual(['iban']);
  });

  it('finds US SSNs but not the ranges the SSA never issues', () => {
    expect(kinds('SSN 078-05-1120')).toEqual(['ssn']);
    expect(kinds('SSN 000-12-3456', ['ssn'])).toEqual([]);
    expect(kinds('SSN 666-12-3456', ['ssn'])).toEqual([]);
    expect(kinds('SSN 912-12-3456', ['ssn'])).toEqual([]);
  });

  it('finds IPv4 and IPv6 addresses but not version numbers', () => {
    expect(kinds('from 203.0.113.7 and 2001:db8::8a2e:370:7334')).toEqual(['ip', 'ip']);
    expect(kinds('upgrade to version 1.2.3.4')).toEqual([]);
    expect(kinds('999.1.1.1')).toEqual([]);
  });

  it('finds phone numbers in international and national shapes', () => {
    expect(kinds('call +44 20 7946 0958 now')).toEqual(['phone']);
    expect(kinds('office (555) 123-4567 x12')).toEqual(['phone']);
    expect(kinds('Phone:\n467 3395')).toEqual(['phone']);
    expect(kinds('between 2019-05-04 and 2020-01-01 we sold 1200 units')).toEqual([]);
  });

  it('only reports the kinds asked for', () => {
    expect(kinds('jane@example.org 203.0.113.7', ['ip'])).toEqual(['ip']);
  });
});
