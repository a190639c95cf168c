import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, interpolate, parseConfig } from '../src/config/load.js';

const base = `upstreams:
  - { name: local, kind: mock }
models:
  - { match: "*", upstream: local }
tiers:
  default: { scopes: ["*"], models: ["*"], limits: [] }
`;

describe('config', () => {
  it('the built-in default routes every model to the mock upstream', () => {
    const cfg = defaultConfig();
    expect(cfg.upstreams).toEqual([expect.objectContaining({ name: 'local', kind: 'mock' })]);
    expect(cfg.models[0]).toMatchObject({ match: '*', upstream: 'local' });
    expect(cfg.limits.store).toBe('memory');
    expect(Object.keys(cfg.tiers)).toEqual(['default']);
  });

  it('names the line and path of a bad duration', () => {
    const text = `${base}  free:\n    limits:\n      - { id: rpm, requests: 20, window: 1x }\n`;
    expect(() => parseConfig(text)).toThrowError(
      /sluice\.yaml:9: tiers\.free\.limits\.0\.window: "1x" is not a duration/,
    );
  });

  it('refuses a route to an unknown upstream, naming its line', () => {
    const text = base.replace('upstream: local }', 'upstream: nope }');
    try {
      parseConfig(text);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).message).toContain(
        'sluice.yaml:4: models.0.upstream: unknown upstream "nope"',
      );
    }
  });

  it('reports YAML syntax errors with a line', () => {
    expect(() => parseConfig('upstreams: [\n  {name: x\n')).toThrowError(/sluice\.yaml:\d+/);
  });

  it('interpolates ${ENV} and ${ENV:-default}, and names a missing variable', () => {
    expect(interpolate('a ${X} ${Y:-dflt} $${Z}', { X: '1' }, [])).toBe('a 1 dflt ${Z}');
    const text = base.replace(
      '- { name: local, kind: mock }',
      '- { name: local, kind: mock }\n  - { name: oa, kind: openai, baseUrl: "https://x.test/v1", apiKey: "${NOPE_KEY}" }',
    );
    expect(() => parseConfig(text, 'f.yaml', {})).toThrowError(
      /f\.yaml:3: upstreams\.1\.apiKey: environment variable NOPE_KEY is not set/,
    );
    const cfg = parseConfig(text, 'f.yaml', { NOPE_KEY: 'sk-up' });
    expect(cfg.upstreams[1]).toMatchObject({ apiKey: 'sk-up' });
  });

  it('refuses geo rules without a geo database', () => {
    const text = `${base}  eu:\n    rules: { countries: { allow: [DE, FR] } }\n`;
    expect(() => parseConfig(text)).toThrowError(
      /tiers\.eu\.rules\.countries: country rules need a geo database/,
    );
  });

  it('a limit must name exactly one cost kind and a window', () => {
    expect(() =>
      parseConfig(`${base}  x:\n    limits: [{ id: a, requests: 1, tokens: 2, window: 1m }]\n`),
    ).toThrowError(/exactly one of/);
    expect(() => parseConfig(`${base}  x:\n    limits: [{ id: a, requests: 1 }]\n`)).toThrowError(
      /needs a window/,
    );
    const ok = parseConfig(
      `${base}  x:\n    limits: [{ id: c, concurrent: 2 }, { id: r, requests: 20, window: 1m, burst: 5 }]\n`,
    );
    expect(ok.tiers.x!.limits[1]).toMatchObject({
      requests: 20,
      window: 60_000,
      burst: 5,
      per: 'key',
      mode: 'enforce',
    });
  });
});

describe('config: compiled-policy checks', () => {
  it('a bad CIDR in a rule is refused with its line', () => {
    const text = `${base}  x:\n    rules:\n      deny: ["10.0.0.0/99"]\n`;
    expect(() => parseConfig(text)).toThrowError(/sluice\.yaml:\d+: tiers\.x\.rules\.deny/);
  });
});
