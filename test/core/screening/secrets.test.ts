import { describe, expect, it } from 'vitest';
import { redact } from '../../../src/core/screening/findings.js';
import { detectSecrets } from '../../../src/core/screening/secrets.js';

// Fixtures are assembled at run time so this file itself does not trip secret scanners.
const openai = `sk-proj-${'Ab3dE5gH7jK9mN1pQ3sT5vX7zB9cD1fG'}T3BlbkFJ${'hJ2kL4nP6rS8uW0yA2cE4gI6kM8oQ0sU'}`;
const github = `ghp_${'R8aZk2Lq9Xw4Tn7Vb1Mc5Hd3Jf6Gs0Py2Ue8'}`;
const aws = `AKIA${'Q3WZ7YX2M5RKJH4T'}`;
const jwt = `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.${'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'}`;

const kinds = (t: string) => detectSecrets(t).map((f) => f.kind);

describe('detectSecrets', () => {
  it('finds provider keys by their prefix, with exact spans', () => {
    const text = `my key is ${openai} thanks`;
    const [f] = detectSecrets(text);
    expect(f).toMatchObject({ kind: 'openai-key', start: 10, end: 10 + openai.length });
    expect(kinds(`token ${github}`)).toContain('github-token');
    expect(kinds(`id ${aws} region eu`)).toContain('aws-access-key');
    expect(kinds(`Authorization: Bearer ${jwt}`)).toEqual(expect.arrayContaining(['jwt']));
  });

  it('finds private keys, connection strings and generic high-entropy assignments', () => {
    const pem = `-----BEGIN RSA PRIVATE KEY-----\n${'MIIEowIBAAKCAQEA7v1m9'.repeat(4)}\n-----END RSA PRIVATE KEY-----`;
    expect(kinds(pem)).toEqual(['private-key']);
    expect(kinds('DATABASE_URL=postgres://app:S3cr3tPa55w0rd@db.internal:5432/prod')).toEqual([
      'connection-string',
    ]);
    expect(kinds('client_secret = "q8Zr2Lk9Wm4Xt7Pv1Bn5"')).toEqual(['generic-secret']);
  });

  it('lets placeholders, identifiers and prose through (allowlist)', () => {
    expect(kinds('OPENAI_API_KEY=your_api_key_here')).toEqual([]);
    expect(kinds('aws_access_key_id = AKIAIOSFODNN7EXAMPLE')).toEqual([]);
    expect(kinds('password: ********')).toEqual([]);
    expect(kinds("credentialsId: 'ff083f76-7804-4ef1-80e4-fe975bb9141b'")).toEqual([]);
    expect(kinds('The secret to a good sourdough is patience and a warm kitchen.')).toEqual([]);
    expect(kinds('-----BEGIN PRIVATE KEY-----\nanything\n-----END PRIVATE KEY-----')).toEqual([]);
  });

  it('redacts by span and names the kind', () => {
    const text = `use ${github} please`;
    expect(redact(text, detectSecrets(text))).toBe('use [REDACTED:github-token] please');
  });
});
