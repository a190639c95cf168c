/** The `labels`, `tls`, `fallbacks` and `routing.pins` settings: what parses and what is refused, by path. */
import { describe, expect, it } from 'vitest';
import { diffPolicies, formatChanges } from '../../src/config/diff.js';
import { parseConfig } from '../../src/config/load.js';

const FP = 'AB:'.repeat(31) + 'AB';

const cfg = (extra: string, upstreamExtra = '') => `upstreams:
  - { name: public, kind: openai, baseUrl: "http://127.0.0.1:9/v1" }
  - name: tee
    kind: openai
    baseUrl: "https://127.0.0.1:9/v1"
    labels: { confidential: true, region: eu, zone: 3 }
${upstreamExtra}models:
  - { match: "*", upstream: public, fallbacks: [tee] }
tiers: { default: {} }
tasks:
  summarize: { model: m, system: s }
${extra}`;

describe('confidential routing config', () => {
  it('labels are strings once parsed; pins and fallbacks are kept as written', () => {
    const c = parseConfig(
      cfg(`routing:
  pins:
    - { task: summarize, labels: { confidential: true } }
    - { action: "embeddings.*", tenant: acme, labels: { region: eu } }
`),
    );
    expect(c.upstreams[1]!.labels).toEqual({ confidential: 'true', region: 'eu', zone: '3' });
    expect(c.models[0]!.fallbacks).toEqual(['tee']);
    expect(c.routing?.pins).toEqual([
      { task: 'summarize', labels: { confidential: 'true' } },
      { action: 'embeddings.*', tenant: 'acme', labels: { region: 'eu' } },
    ]);
  });

  it('a fingerprint is stored as 64 lowercase hex digits, from the openssl form', () => {
    const c = parseConfig(cfg('', `    tls: { fingerprints: ["${FP}"] }\n`));
    const u = c.upstreams[1]!;
    expect(u.kind === 'openai' && u.tls?.fingerprints).toEqual(['ab'.repeat(32)]);
  });

  it.each([
    [
      'a pin whose labels no upstream carries',
      `routing: { pins: [{ tenant: a, labels: { confidential: false } }] }\n`,
      /routing\.pins\.0\.labels: no upstream carries confidential=false/,
    ],
    [
      'a pin without a selector',
      `routing: { pins: [{ labels: { region: eu } }] }\n`,
      /a pin names at least one of action, task, tier, tenant/,
    ],
    [
      'a pin without labels',
      `routing: { pins: [{ tier: default, labels: {} }] }\n`,
      /a pin requires at least one label/,
    ],
    [
      'a pin naming an unknown tier',
      `routing: { pins: [{ tier: gold, labels: { region: eu } }] }\n`,
      /routing\.pins\.0\.tier: unknown tier "gold"/,
    ],
    [
      'a pin naming an unknown task',
      `routing: { pins: [{ task: nope, labels: { region: eu } }] }\n`,
      /routing\.pins\.0\.task: unknown task "nope"/,
    ],
  ])('refuses %s', (_, extra, message) => {
    expect(() => parseConfig(cfg(extra))).toThrowError(message);
  });

  it('refuses a fallback to an unknown upstream', () => {
    expect(() => parseConfig(cfg('').replace('fallbacks: [tee]', 'fallbacks: [nope]'))).toThrowError(
      /models\.0\.fallbacks\.0: unknown upstream "nope"/,
    );
  });

  it('refuses tls on an http upstream, a certificate without its key, and a malformed fingerprint', () => {
    const onHttp = cfg('').replace(
      'baseUrl: "http://127.0.0.1:9/v1" }',
      'baseUrl: "http://127.0.0.1:9/v1", tls: { ca: ca.pem } }',
    );
    expect(() => parseConfig(onHttp)).toThrowError(/upstreams\.0\.tls: tls needs an https baseUrl/);
    expect(() => parseConfig(cfg('', '    tls: { cert: c.pem }\n'))).toThrowError(
      /tls\.cert and tls\.key go together/,
    );
    expect(() => parseConfig(cfg('', '    tls: { fingerprints: ["abc"] }\n'))).toThrowError(
      /a SHA-256 fingerprint is 64 hex digits/,
    );
  });
});

describe('policy diff', () => {
  it('names added and removed pins and a route gaining a fallback; a changed tls is named, never shown', () => {
    const a = parseConfig(cfg('').replace('fallbacks: [tee]', 'fallbacks: []'));
    const b = parseConfig(
      cfg(
        `routing:\n  pins:\n    - { tenant: hospital, labels: { confidential: true } }\n`,
        '    tls: { passphrase: "p4ss-in-diff" }\n',
      ),
    );
    const text = formatChanges(diffPolicies(a, b));
    expect(text).toContain('+ routing.pins: pin added: tenant=hospital => confidential=true');
    expect(text).toContain('+ models.routes: routes granted: * -> public then tee');
    expect(text).toContain('~ upstreams.tee: upstream settings changed: tls');
    expect(text).not.toContain('p4ss-in-diff');
    expect(formatChanges(diffPolicies(b, a))).toContain('- routing.pins: pin removed: tenant=hospital');
  });
});
