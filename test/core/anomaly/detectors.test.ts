import { describe, expect, it } from 'vitest';
import { AnomalyDetectors, type Observation } from '../../../src/core/anomaly/detectors.js';
import { netOf, promptFeatures, rangeOfNet } from '../../../src/core/anomaly/text.js';

const T0 = Date.UTC(2026, 0, 1);

function obs(over: Partial<Observation>): Observation {
  return {
    requestId: 'r',
    keyId: 'k1',
    tenantId: 't1',
    ip: '10.0.0.1',
    userAgent: 'openai-node/4.77.0',
    headerNames: ['user-agent', 'content-type'],
    endUser: null,
    action: 'chat.create',
    endpoint: 'chat',
    model: 'demo-model',
    prompt: 'hello there',
    inputTokens: 10,
    outputTokens: 20,
    status: 200,
    ...over,
  };
}

describe('prompt features', () => {
  it('gives one template to prompts that differ only in their filled slots', () => {
    const a = promptFeatures('Write a five-star review for "Acme Kettle" mentioning 2 day shipping');
    const b = promptFeatures('Write a five-star review for "Zeta Lamp" mentioning 5 day shipping');
    const c = promptFeatures('Summarise this ticket: printer on fire');
    expect(a.template).toBe(b.template);
    expect(a.template).not.toBe(c.template);
  });

  it('sees reasoning-extraction requests', () => {
    expect(promptFeatures('Explain step by step how DNS works').reasoning).toBe(true);
    expect(promptFeatures('What is DNS?').reasoning).toBe(false);
  });

  it('groups addresses by /24 and /48', () => {
    expect(netOf('192.0.2.77')).toBe('192.0.2.0/24');
    expect(netOf('2001:db8:1:2::5')).toBe('2001:db8:1::/48');
    expect(rangeOfNet(netOf('192.0.2.77'))).toBe('192.0');
    expect(rangeOfNet(netOf('2001:db8:1:2::5'))).toBe('2001:db8');
  });
});

describe('credential stuffing', () => {
  it('fires on many different bad credentials from one range, not on one key retried', () => {
    const d = new AnomalyDetectors();
    let found = 0;
    // 1. One misconfigured client retries the same wrong key 200 times: nothing.
    for (let i = 0; i < 200; i++)
      found += d.authFailed({ ip: '198.51.100.7', credential: 42, userAgent: null }, T0 + i * 500).length;
    expect(found).toBe(0);
    // 2. Twelve different credentials from three addresses of another /24: a finding naming them.
    const all = [];
    for (let i = 0; i < 12; i++)
      all.push(
        ...d.authFailed(
          { ip: `203.0.113.${i % 3}`, credential: 1000 + i, userAgent: null },
          T0 + 200_000 + i * 1100,
        ),
      );
    expect(all.length).toBeGreaterThan(0);
    expect(all[0]!.detector).toBe('credential-stuffing');
    expect(all[0]!.subject.net).toBe('203.0.113.0/24');
    expect(all[0]!.related.ips.sort()).toEqual(['203.0.113.0', '203.0.113.1', '203.0.113.2']);
  });
});

describe('credential stuffing over a wider range', () => {
  it('flags 12 different bad credentials spread over the four /24s of a /22, and quarantines at 25', () => {
    const d = new AnomalyDetectors();
    const found = [];
    // One guess every 6 s, each /24 of 198.51.100.0/22 in turn: no /24 reaches 10 for a long time.
    for (let i = 0; i < 30; i++)
      found.push(
        ...d.authFailed(
          { ip: `198.51.${100 + (i % 4)}.${10 + i}`, credential: 5000 + i, userAgent: null },
          T0 + i * 6000,
        ),
      );
    const wide = found.filter((f) => f.subject.net === '198.51.0.0/16');
    expect(wide[0]?.suggest).toBe('flag');
    expect(wide[0]?.signals.distinctCredentials).toBe(12);
    expect(wide.some((f) => f.suggest === 'quarantine')).toBe(true);
    expect(found.filter((f) => f.subject.net !== '198.51.0.0/16')).toEqual([]);
  });
});

describe('template campaign', () => {
  const template = (i: number) => `Write a five-star review for product ${i} mentioning fast shipping`;

  it('quarantines fresh tenants sending one template through shared proxies', () => {
    const d = new AnomalyDetectors();
    const findings = [];
    for (let round = 0; round < 5; round++)
      for (let i = 0; i < 12; i++)
        findings.push(
          ...d.observe(
            obs({
              keyId: `k${i}`,
              tenantId: `t${i}`,
              ip: i % 2 ? '192.0.2.10' : '198.51.100.20',
              prompt: template(i * 7 + round),
            }),
            T0 + round * 10_000 + i * 50,
          ),
        );
    const campaign = findings.find((f) => f.detector === 'template-campaign');
    expect(campaign?.suggest).toBe('quarantine');
    expect(campaign?.related.keys.length).toBeGreaterThanOrEqual(6);
  });

  it('does not correlate tenants behind a private or loopback address (an undeclared proxy, or the operator network)', () => {
    const run = (ip: (i: number) => string) => {
      const d = new AnomalyDetectors();
      const findings = [];
      for (let round = 0; round < 5; round++)
        for (let i = 0; i < 12; i++)
          findings.push(
            ...d.observe(
              obs({ keyId: `k${i}`, tenantId: `t${i}`, ip: ip(i), prompt: template(i * 7 + round) }),
              T0 + round * 10_000 + i * 50,
            ),
          );
      return findings.filter(
        (f) => f.detector === 'template-campaign' || f.detector === 'client-fingerprint',
      );
    };
    // 1. The same traffic through one public proxy is a campaign...
    expect(run(() => '198.51.100.20').length).toBeGreaterThan(0);
    // 2. ...but not through a load balancer's private address, loopback or an IPv6 ULA.
    expect(run(() => '10.1.2.3')).toEqual([]);
    expect(run(() => '127.0.0.1')).toEqual([]);
    expect(run(() => '192.168.0.9')).toEqual([]);
    expect(run(() => 'fd00::1')).toEqual([]);
  });

  it('leaves a popular template alone when each tenant sends it from its own network', () => {
    const d = new AnomalyDetectors();
    const findings = [];
    for (let round = 0; round < 5; round++)
      for (let i = 0; i < 20; i++)
        findings.push(
          ...d.observe(
            // (public addresses: private ones are never correlated, see the test above)
            obs({ keyId: `k${i}`, tenantId: `t${i}`, ip: `203.0.${i}.5`, prompt: template(i + round) }),
            T0 + round * 10_000 + i * 50,
          ),
        );
    expect(
      findings.filter((f) => f.detector === 'template-campaign' || f.detector === 'client-fingerprint'),
    ).toEqual([]);
  });

  it('leaves two customers on one cloud network out of a campaign that uses their popular template', () => {
    const d = new AnomalyDetectors();
    const findings = [];
    for (let round = 0; round < 5; round++) {
      // Two long-standing customers on one cloud /24, each sending the template on its own...
      for (const [i, key] of ['cust-a', 'cust-b'].entries())
        findings.push(
          ...d.observe(
            obs({ keyId: key, tenantId: key, ip: `40.76.91.${10 + i}`, prompt: template(round * 3 + i) }),
            T0 + round * 10_000 + i * 30,
          ),
        );
      // ...and twelve fresh accounts behind two proxies sending it in lockstep.
      for (let i = 0; i < 12; i++)
        findings.push(
          ...d.observe(
            obs({
              keyId: `k${i}`,
              tenantId: `t${i}`,
              ip: i % 2 ? '192.0.2.10' : '198.51.100.20',
              prompt: template(i * 7 + round),
            }),
            T0 + round * 10_000 + 100 + i * 50,
          ),
        );
    }
    const campaign = findings.filter((f) => f.detector === 'template-campaign');
    expect(campaign.length).toBeGreaterThan(0);
    const named = new Set(campaign.flatMap((f) => f.related.keys));
    expect(named.has('k0')).toBe(true);
    expect(named.has('cust-a') || named.has('cust-b')).toBe(false);
  });

  it('leaves one tenant with many keys on one network alone', () => {
    const d = new AnomalyDetectors();
    const findings = [];
    for (let round = 0; round < 5; round++)
      for (let i = 0; i < 30; i++)
        findings.push(
          ...d.observe(
            obs({ keyId: `k${i}`, tenantId: 'bigco', ip: '10.9.9.9', prompt: template(i) }),
            T0 + round * 10_000 + i * 50,
          ),
        );
    expect(findings.filter((f) => f.suggest === 'quarantine')).toEqual([]);
  });
});

describe('client fingerprint', () => {
  const farmClient = {
    userAgent: 'OpenAI/Python 1.3.5',
    headerNames: ['user-agent', 'content-type', 'x-odd-order'],
  };
  /**
   * Ten minutes of ordinary traffic first (tenants on their own networks, a common client), then
   * `farm` tenants joining one by one, a minute apart, each from another /24 of 45.161.208.0/22 and
   * sending once every 30 s. `elsewhere`: one more tenant uses the farm's client from another network.
   */
  function run(farm: number, opts: { elsewhere?: boolean; from?: number } = {}) {
    const d = new AnomalyDetectors();
    const out: { t: number; f: ReturnType<AnomalyDetectors['observe']>[number] }[] = [];
    const see = (o: Partial<Observation>, t: number) => {
      for (const f of d.observe(obs(o), T0 + t))
        if (f.detector === 'client-fingerprint') out.push({ t, f: { ...f } });
    };
    const start = opts.from ?? 600_000;
    for (let t = 0; t < start + 600_000; t += 5_000) {
      for (let i = 0; i < 6; i++)
        see({ keyId: `own${i}`, tenantId: `own${i}`, ip: `198.${i + 10}.7.9` }, t + i);
      if (opts.elsewhere && t >= start - 60_000)
        see({ ...farmClient, keyId: 'dev', tenantId: 'dev', ip: '81.2.69.142' }, t + 7);
      for (let j = 0; j < farm; j++) {
        const joined = start + j * 60_000;
        if (t >= joined && (t - joined) % 30_000 === 0)
          see(
            {
              ...farmClient,
              keyId: `farm${j}`,
              tenantId: `fresh${j}`,
              ip: `45.161.${208 + (j % 4)}.${20 + j}`,
            },
            t + 9,
          );
      }
    }
    return out;
  }

  it('flags an unusual client that only one /22 uses, shared by three fresh tenants there', () => {
    const found = run(3);
    expect(found.length).toBeGreaterThan(0);
    const first = found[0]!;
    // At the third tenant's first request (two minutes after the first), as a flag naming all three keys.
    expect(first.t).toBe(600_000 + 120_000 + 9);
    expect(first.f.suggest).toBe('flag');
    expect(first.f.subject).toEqual({ net: '45.161.208.0/22' });
    expect([...first.f.related.keys].sort()).toEqual(['farm0', 'farm1', 'farm2']);
    expect(first.f.reason).toContain('3 tenants from 45.161.208.0/22');
    // Six tenants: a quarantine.
    expect(run(6).some((x) => x.f.suggest === 'quarantine' && x.f.related.keys.length === 6)).toBe(true);
  });

  it('quarantines six tenants of one /24 sharing a client nobody else uses; a client tenants elsewhere use is only flagged', () => {
    const sdk = { userAgent: 'OpenAI/Python 1.40.0', headerNames: ['user-agent', 'content-type', 'accept'] };
    const run = (common: boolean) => {
      const d = new AnomalyDetectors();
      const found: ReturnType<AnomalyDetectors['observe']>[number][] = [];
      for (let t = 0; t < 600_000; t += 10_000) {
        // Three tenants on their own networks using the same SDK release.
        if (common)
          for (let i = 0; i < 3; i++)
            d.observe(
              obs({ ...sdk, keyId: `o${i}`, tenantId: `o${i}`, ip: `81.${i + 1}.69.142` }),
              T0 + t + i,
            );
        // Six tenants on one /24 (a cloud NAT, or a farm).
        for (let j = 0; j < 6; j++)
          for (const f of d.observe(
            obs({ ...sdk, keyId: `f${j}`, tenantId: `f${j}`, ip: `45.161.208.${10 + j}` }),
            T0 + t + 100 + j,
          ))
            if (f.detector === 'client-fingerprint' && f.subject.net === '45.161.208.0/24')
              found.push({ ...f });
      }
      return found;
    };
    const rare = run(false);
    expect(rare.some((f) => f.suggest === 'quarantine')).toBe(true);
    const common = run(true);
    expect(common.length).toBeGreaterThan(0);
    expect(common.every((f) => f.suggest === 'flag')).toBe(true);
    expect(common[0]!.reason).toContain('a client 3 tenants use from other networks');
  });

  it('leaves two tenants, a client also used on another network, and the first five minutes of watching', () => {
    expect(run(2)).toEqual([]);
    expect(run(5, { elsewhere: true })).toEqual([]);
    // The same farm from the detectors' first request: every client is new then, none is known to be rare.
    expect(run(3, { from: 0 })).toEqual([]);
  });
});

describe('key sharing', () => {
  it('fires when a key with a home network is suddenly used from many new ones; a NAT change does not', () => {
    const d = new AnomalyDetectors();
    const found = [];
    // 1. Five minutes from home, then a move to one other network (NAT change): nothing.
    for (let s = 0; s < 300; s += 5) found.push(...d.observe(obs({ ip: '10.1.1.1' }), T0 + s * 1000));
    for (let s = 300; s < 600; s += 5) found.push(...d.observe(obs({ ip: '10.2.2.2' }), T0 + s * 1000));
    expect(found.filter((f) => f.detector === 'key-sharing')).toEqual([]);
    // 2. Then 15 networks within a minute.
    for (let i = 0; i < 30; i++)
      found.push(...d.observe(obs({ ip: `172.${16 + (i % 15)}.${i}.9` }), T0 + 600_000 + i * 2000));
    const f = found.find((x) => x.detector === 'key-sharing' && x.suggest === 'quarantine');
    expect(f).toBeDefined();
    expect(f?.subject.keyId).toBe('k1');
  });

  it('flags a key with one home network used from six new ones in 5 minutes; five is a traveller', () => {
    const run = (newNets: number) => {
      const d = new AnomalyDetectors();
      const found = [];
      for (let s = 0; s < 600; s += 5) found.push(...d.observe(obs({ ip: '198.51.100.7' }), T0 + s * 1000));
      // One new network every 40 s among the home traffic (a quiet leak).
      for (let i = 0; i < newNets; i++)
        found.push(...d.observe(obs({ ip: `203.0.${113 + i}.9` }), T0 + 600_000 + i * 40_000));
      return found.filter((f) => f.detector === 'key-sharing');
    };
    expect(run(5)).toEqual([]);
    const six = run(6);
    expect(six.map((f) => f.suggest)).toEqual(['flag']);
    expect(six[0]?.signals.newNetworks).toBe(6);
  });

  it('flags a key of two networks used from six new ones in six new address ranges; six more of its own provider are growth', () => {
    // Two home networks for ten minutes, then one new network every 15 s among the home traffic.
    const run = (newIp: (i: number) => string) => {
      const d = new AnomalyDetectors();
      const found = [];
      for (let s = 0; s < 600; s += 5)
        found.push(...d.observe(obs({ ip: s % 10 === 0 ? '198.51.100.7' : '198.51.101.7' }), T0 + s * 1000));
      for (let i = 0; i < 6; i++) {
        found.push(...d.observe(obs({ ip: newIp(i) }), T0 + 600_000 + i * 15_000));
        found.push(...d.observe(obs({ ip: '198.51.100.7' }), T0 + 605_000 + i * 15_000));
      }
      return found.filter((f) => f.detector === 'key-sharing');
    };
    // Strangers: six /24s in six /16s the key never used (9 new networks would be needed otherwise).
    const leak = run((i) => `${81 + i}.${20 + i}.7.9`);
    expect(leak.length).toBeGreaterThan(0);
    expect(leak.every((f) => f.suggest === 'flag')).toBe(true);
    expect(leak[0]?.signals).toMatchObject({ newNetworks: 6, newRanges: 6, previousNetworks: 2 });
    // The owner's autoscaled backend: six more /24s of its own two /16s.
    expect(run((i) => `198.51.${110 + i}.7`)).toEqual([]);
  });

  it('compares new address ranges with the ranges the key used: three networks of one ISP are one range', () => {
    // Three home networks for ten minutes, then one stranger's network every 15 s.
    const run = (home: string[]) => {
      const d = new AnomalyDetectors();
      const found = [];
      for (let s = 0; s < 600; s += 5)
        found.push(...d.observe(obs({ ip: home[(s / 5) % 3]! }), T0 + s * 1000));
      for (let i = 0; i < 6; i++) {
        found.push(...d.observe(obs({ ip: `${81 + i}.${20 + i}.7.9` }), T0 + 600_000 + i * 15_000));
        found.push(...d.observe(obs({ ip: home[0]! }), T0 + 605_000 + i * 15_000));
      }
      return found.filter((f) => f.detector === 'key-sharing');
    };
    // One ISP's /16: six new ranges are three times its one (twice its three networks would be 8).
    const oneRange = run(['198.51.100.7', '198.51.101.7', '198.51.102.7']);
    expect(oneRange.length).toBeGreaterThan(0);
    expect(oneRange[0]?.signals).toMatchObject({ newNetworks: 6, newRanges: 6, previousNetworks: 3 });
    // Three networks in three ranges (an owner spread over providers): six new ranges are not enough.
    expect(run(['198.51.100.7', '203.0.113.7', '192.0.2.7'])).toEqual([]);
  });

  it('leaves an app called from many networks that gets busier: its new networks come at the rate its requests do', () => {
    // A mobile app: each request from a phone on some carrier network, one new network in two
    // requests, from 12 requests a minute for 2 minutes to 40 a minute.
    const run = (perMinAfter: number, newEvery: number) => {
      const d = new AnomalyDetectors();
      const found = [];
      let net = 0;
      let t = T0;
      for (let i = 0; i < 24; i++, t += 5000)
        found.push(...d.observe(obs({ ip: `100.${i % 2 ? net : net++}.7.9` }), t));
      for (let i = 0; i < perMinAfter * 5; i++, t += 60_000 / perMinAfter)
        found.push(...d.observe(obs({ ip: `100.${i % newEvery ? net % 12 : net++}.7.9` }), t));
      return found.filter((f) => f.detector === 'key-sharing');
    };
    expect(run(40, 2)).toEqual([]);
    // The same key whose new networks come four times as often per request as they did: a finding.
    expect(run(40, 1).length).toBeGreaterThan(0);
  });

  it("flags a busy key of five networks whose new networks bring strangers' clients; not new versions of its own app", () => {
    // The owner: a request every 2 s from five networks of one /16 for ten minutes, and on. From
    // minute 10, a stranger on a new network (in a new /16) every 10 s, each back every 30 s: too
    // few new networks per request against the owner's for the per-request check.
    const run = (ua: (i: number) => string) => {
      const d = new AnomalyDetectors();
      const found = [];
      for (let s = 0; s < 780; s += 2) {
        found.push(...d.observe(obs({ ip: `198.51.${100 + ((s / 2) % 5)}.7` }), T0 + s * 1000));
        if (s >= 600 && s % 10 === 0)
          for (let j = 0; j <= Math.min(7, (s - 600) / 10); j++)
            if (j === (s - 600) / 10 || (s - 600 - 10 * j) % 30 === 0)
              found.push(
                ...d.observe(obs({ ip: `${81 + j}.${20 + j}.7.9`, userAgent: ua(j) }), T0 + s * 1000 + 500),
              );
      }
      return found.filter((f) => f.detector === 'key-sharing');
    };
    const tools = [
      'curl/8.5.0',
      'python-httpx/0.27.2',
      'AsyncOpenAI/Python 1.66.3',
      'Mozilla/5.0 (Windows NT 10.0)',
    ];
    const leak = run((j) => tools[j % 4]!);
    expect(leak.length).toBeGreaterThan(0);
    expect(leak[0]?.signals).toMatchObject({ previousNetworks: 5 });
    // The app's own devices: user agents differ by version and OS, but name the app.
    const app = [
      'Cobalt/3.4.1 (iOS 17.5.1) Alamofire/5.9.1',
      'Cobalt/3.5.0 (Android 14; SM-S918B) okhttp/4.12.0',
    ];
    expect(run((j) => `${app[j % 2]!} build ${j}`)).toEqual([]);
  });

  /** A key called from `nets` networks from its first request on (an edge deployment, a mobile app). */
  function manyNetworksFromTheStart(
    d: AnomalyDetectors,
    key: string,
    t0: number,
    nets: number,
    seconds: number,
  ) {
    const found = [];
    for (let s = 0; s < seconds; s++)
      found.push(
        ...d.observe(
          obs({ keyId: key, tenantId: key, ip: `100.${(s * 7) % nets}.1.${s % 200}` }),
          t0 + s * 1000,
        ),
      );
    return found.filter((f) => f.detector === 'key-sharing');
  }

  it('leaves a key that has used many networks since it was first seen: its first minutes are its baseline', () => {
    // 24 networks in the first 2 minutes, 40 by minute 5, used in rotation for 15 minutes: before,
    // "used from 36 new networks in 5 min (it had used 1 before)" and a quarantine at minute 5.
    const d = new AnomalyDetectors();
    expect(manyNetworksFromTheStart(d, 'edge', T0, 40, 900)).toEqual([]);
    // A key with a long history from one network that is then shared still is quarantined.
    const found = [];
    for (let s = 0; s < 600; s += 5)
      found.push(...d.observe(obs({ keyId: 'home', ip: '10.1.1.1' }), T0 + s * 1000));
    for (let i = 0; i < 30; i++)
      found.push(
        ...d.observe(obs({ keyId: 'home', ip: `172.${16 + (i % 15)}.${i}.9` }), T0 + 600_000 + i * 2000),
      );
    expect(found.some((x) => x.detector === 'key-sharing' && x.suggest === 'quarantine')).toBe(true);
  });

  it('flags a new key used from many networks at once only when it appeared well after detection started', () => {
    // Seen in the first minutes of detection (a restart, the start of a replay): not known to be new.
    const d = new AnomalyDetectors();
    expect(manyNetworksFromTheStart(d, 'old', T0, 60, 100)).toEqual([]);
    // Twelve minutes later, a key never seen before does the same: flagged (not quarantined).
    const late = manyNetworksFromTheStart(d, 'new', T0 + 12 * 60_000, 60, 100);
    expect(late.length).toBeGreaterThan(0);
    expect(late[0]!.reason).toMatch(/a new key used from \d+ networks in its first minutes/);
    expect(late.every((f) => f.suggest === 'flag')).toBe(true);
  });
});

describe('volume spike', () => {
  it('flags a burst well above the baseline once, and not a repeat of a burst it has seen before', () => {
    const d = new AnomalyDetectors();
    const spikes: number[] = [];
    let t = T0;
    const run = (seconds: number, perSecond: number) => {
      const step = 1000 / perSecond;
      for (const end = t + seconds * 1000; t < end; t += step)
        for (const f of d.observe(obs({}), t))
          if (f.detector === 'volume-spike' && f.subject.keyId) spikes.push(t);
    };
    run(600, 0.2);
    run(60, 10);
    expect(spikes.length).toBe(1);
    run(600, 0.2);
    run(60, 10);
    expect(spikes.length).toBe(1);
  });

  it("remembers a burst shown before the baseline settled: a batch's second run is its pattern", () => {
    // A batch key: a run 90 s into detection (the first minutes of a replay, or after a restart),
    // the next one 6 minutes later. The second is no surprise.
    const d = new AnomalyDetectors();
    const found: string[] = [];
    let t = T0;
    const run = (seconds: number, perSecond: number) => {
      for (const end = t + seconds * 1000; t < end; t += 1000 / perSecond)
        for (const f of d.observe(obs({}), t)) if (f.subject.keyId) found.push(f.detector);
    };
    run(90, 0.05);
    run(20, 5);
    run(330, 0.05);
    run(60, 5);
    run(120, 0.05);
    expect(found.filter((x) => x === 'volume-spike')).toEqual([]);
  });

  it("judges a flood that began in a key's first minutes once it has gone on 90 s", () => {
    // A key seen now and then for 3 minutes, then 4 requests/s for 4 minutes. The flood began
    // before the baseline settled (5 minutes of slots), so it was remembered as the key's pattern
    // and never judged; a batch run that is over within 90 s still is (the test above).
    const d = new AnomalyDetectors();
    const found: number[] = [];
    let t = T0;
    const run = (seconds: number, perSecond: number) => {
      for (const end = t + seconds * 1000; t < end; t += 1000 / perSecond)
        for (const f of d.observe(obs({}), t))
          if (f.detector === 'volume-spike' && f.subject.keyId) found.push(t - T0);
    };
    run(180, 0.05);
    run(240, 4);
    expect(found.length).toBe(1);
    // Judged once it has gone on 90 s (from 180 s) and the baseline has settled (300 s).
    expect(found[0]!).toBeGreaterThanOrEqual(300_000);
    expect(found[0]!).toBeLessThan(330_000);
  });

  it('still judges a key that is busy from its first request (its first minute is no burst)', () => {
    // 8 requests/s from the start (a restart finds it busy), then 100/s ten minutes later: flagged.
    // It starts at the end of a 10-s slot, so its first slot holds one request: against that, its
    // next 20 s looked like a burst, and a burst "shown before" is never flagged again.
    const d = new AnomalyDetectors();
    const found: number[] = [];
    let t = T0 + 9_900;
    const run = (seconds: number, perSecond: number) => {
      for (const end = t + seconds * 1000; t < end; t += 1000 / perSecond)
        for (const f of d.observe(obs({}), t))
          if (f.detector === 'volume-spike' && f.subject.keyId) found.push((t - T0) / 1000);
    };
    run(600, 8);
    run(60, 100);
    expect(found.length).toBe(1);
    expect(found[0]!).toBeGreaterThanOrEqual(600);
  });

  /** When a key at 0.1 requests/s that then ramps to `peak` over `rampS` seconds is first flagged (s after the ramp began). */
  function flaggedAfter(peak: number, rampS: number): number | null {
    const d = new AnomalyDetectors();
    let t = T0;
    for (; t < T0 + 600_000; t += 10_000) d.observe(obs({}), t);
    const start = t;
    let rate = 0.1;
    while (t < start + 600_000) {
      rate = Math.min(peak, 0.1 + ((peak - 0.1) * (t - start)) / (rampS * 1000));
      t += 1000 / rate;
      for (const f of d.observe(obs({}), t))
        if (f.detector === 'volume-spike' && f.subject.keyId) return (t - start) / 1000;
    }
    return null;
  }

  it('flags a surge that builds up over minutes: its own first slots do not become the baseline', () => {
    // To 2.5 requests/s over 3 minutes (25x): before, the baseline followed the ramp and never fell
    // under a tenth of the rate; and a step to 1.3/s was 8x the baseline its first slots had raised.
    const ramp = flaggedAfter(2.5, 180);
    expect(ramp).not.toBeNull();
    expect(ramp!).toBeLessThan(150);
    const step = flaggedAfter(1.3, 1);
    expect(step).not.toBeNull();
    expect(step!).toBeLessThan(40);
    // Doubling over ten minutes (organic growth) is not a spike.
    expect(flaggedAfter(0.2, 600)).toBeNull();
  });
});

describe('style shift', () => {
  const embedding = {
    endpoint: 'embeddings',
    action: 'embeddings.create',
    model: 'demo-embed',
    prompt: 'x'.repeat(900),
  };
  /**
   * A key sending one request every `every` ms: `history` chats, then embeddings; when the first
   * shift finding came. `triedBefore`: one embedding call at the start of the history (so that
   * embeddings are not a kind of call the key never made, `novelKind`).
   */
  function shiftAt(
    every: number,
    history: number,
    burst = 1,
    after = 40,
    triedBefore = false,
  ): { first: number | null; shiftStart: number } {
    const d = new AnomalyDetectors();
    let t = T0;
    let first: number | null = null;
    const send = (o: Observation) => {
      for (const f of d.observe(o, t)) if (f.detector === 'style-shift' && first === null) first = t;
    };
    if (triedBefore) send(obs(embedding));
    for (let i = 0; i < history; i++, t += every) send(obs({ prompt: `hello there number ${i}` }));
    const shiftStart = t;
    for (let i = 0; i < after; i++, t += every / burst) send(obs(embedding));
    return { first, shiftStart };
  }

  it('judges a slow key on its last 8 requests: flagged by the 8th new one, not a window later', () => {
    // One request every 3.5 s: a 15 s window holds 4-5, so a window that began before the shift
    // mixes both kinds and the next whole one took 8 more requests (about a minute).
    const { first, shiftStart } = shiftAt(3500, 100);
    expect(first).not.toBeNull();
    expect(first! - shiftStart).toBeLessThanOrEqual(7 * 3500);
  });

  it('does not judge a key without 60 requests of history, nor on 8 requests bunched into less than 15 s', () => {
    expect(shiftAt(3500, 40).first).toBeNull();
    // A fast key: 8 requests come in 2.8 s, so only the 15 s windows judge it (their first whole one).
    const fast = shiftAt(3500, 100, 10, 120, true);
    expect(fast.first).not.toBeNull();
    expect(fast.first! - fast.shiftStart).toBeGreaterThanOrEqual(15_000);
  });

  it('flags a key that asks for 4x its largest output budget (and 2,000 tokens or more) on 4 calls in 2 minutes', () => {
    const run = (history: number | undefined, later: number, every = 10_000) => {
      const d = new AnomalyDetectors();
      const found: { t: number; reason: string }[] = [];
      let t = T0;
      for (let i = 0; i < 40; i++, t += 9_000)
        d.observe(obs({ prompt: `hello ${i}`, maxTokens: history }), t);
      const start = t;
      for (let i = 0; i < 6; i++, t += every)
        for (const f of d.observe(obs({ prompt: `write an article ${i}`, maxTokens: later }), t))
          if (f.detector === 'style-shift') found.push({ t: t - start, reason: f.reason });
      return found;
    };
    const found = run(500, 4000);
    expect(found.map((f) => f.t)).toEqual([30_000]);
    expect(found[0]!.reason).toBe(
      '4 calls in 30 s asked for up to 4000 output tokens; its 43 earlier requests asked for at most 500',
    );
    // 3x the largest budget, under 2,000 tokens, or 4 calls spread over more than 2 minutes: nothing.
    expect(run(1500, 4000)).toEqual([]);
    expect(run(300, 1600)).toEqual([]);
    expect(run(500, 4000, 50_000)).toEqual([]);
  });

  it('flags a key that turns a third of its calls to a kind it never made, by the 4th of them; not one it had tried', () => {
    // 40 chats over 6 minutes, then every third call an embedding batch (the rest chat as before).
    const run = (triedBefore: boolean, history = 40, shiftIp?: string, every = 9_000) => {
      const d = new AnomalyDetectors();
      const found: { t: number; reason: string }[] = [];
      let t = T0;
      const send = (o: Partial<Observation>) => {
        for (const f of d.observe(obs(o), t))
          if (f.detector === 'style-shift') found.push({ t: t - T0, reason: f.reason });
        t += every;
      };
      if (triedBefore) send(embedding);
      for (let i = 0; i < history; i++) send({ prompt: `hello there number ${i}` });
      const start = t - T0;
      for (let i = 0; i < 30; i++)
        send(
          i % 3 === 0
            ? { ...embedding, ...(shiftIp ? { ip: shiftIp } : {}) }
            : { prompt: `hello again ${i}` },
        );
      return { found, start };
    };
    const { found, start } = run(false);
    expect(found.length).toBeGreaterThan(0);
    // The 4th embedding call is the 10th call since the first: 81 s.
    expect(found[0]!.t - start).toBe(81_000);
    expect(found[0]!.reason).toBe(
      'started calling embeddings, which its 40 earlier requests never did: 4 of its 10 requests since',
    );
    // The histogram tests never see it: a third of the calls is a distance of 0.33.
    expect(run(true).found).toEqual([]);
    // Nor a key of 25 requests over 5.4 minutes (too little history to say what it never does)...
    expect(run(false, 25, undefined, 13_000).found).toEqual([]);
    // ...unless its new kind of call comes from a network it never used (someone else holding it).
    const stolen = run(false, 25, '203.0.113.9', 13_000);
    expect(stolen.found.map((f) => f.t - stolen.start)).toEqual([117_000]);
    // Under 15 requests, too little history either way.
    expect(run(false, 12, '203.0.113.9', 30_000).found).toEqual([]);
  });

  it('leaves a key going back to a kind of call it often makes (a pipeline between runs); flags one it never made', () => {
    // History: runs of 17 chats then 3 embeddings (15 % embeddings), then a run of 30 embeddings.
    const run = (historyEmbeds: boolean) => {
      const d = new AnomalyDetectors();
      let t = T0;
      const found = [];
      const embed = obs({
        endpoint: 'embeddings',
        action: 'embeddings.create',
        model: 'demo-embed',
        prompt: 'x'.repeat(900),
      });
      for (let i = 0; i < 200; i++, t += 2000) {
        const o = historyEmbeds && i % 20 >= 17 ? embed : obs({ prompt: `hello there number ${i}` });
        found.push(...d.observe(o, t));
      }
      for (let i = 0; i < 30; i++, t += 2000) found.push(...d.observe(embed, t));
      return found.filter((f) => f.detector === 'style-shift');
    };
    expect(run(true)).toEqual([]);
    expect(run(false).length).toBeGreaterThan(0);
  });
});

describe('bounded state', () => {
  it('keeps its maps capped under a flood of distinct keys, networks and templates', () => {
    const d = new AnomalyDetectors({ maxKeys: 500, maxTenants: 300, maxNets: 400, maxTemplates: 200 });
    for (let i = 0; i < 3000; i++)
      d.observe(
        obs({
          keyId: `k${i}`,
          tenantId: `t${i}`,
          ip: `198.${(i >> 8) & 255}.${i & 255}.1`,
          prompt: `${i.toString(36)} unique words ${i}`,
        }),
        T0 + i,
      );
    const s = d.sizes();
    expect(s.keys).toBe(500);
    expect(s.tenants).toBe(300);
    expect(s.nets).toBe(400);
    expect(s.templates).toBe(200);
  });

  it('keeps at most 4,096 clients when every request names a new user agent', () => {
    const d = new AnomalyDetectors();
    for (let i = 0; i < 6000; i++)
      d.observe(obs({ ip: `81.20.${(i >> 8) & 255}.${i & 255}`, userAgent: `rotating-client/${i}` }), T0 + i);
    expect(d.sizes().clients).toBe(4096);
  });
});

describe('output shift', () => {
  /** `seconds` of requests at `perSecond`, each answered with `tokens` output tokens; the style-shift reasons. */
  function run(d: AnomalyDetectors, t0: number, seconds: number, perSecond: number, tokens: number) {
    const found: string[] = [];
    for (let i = 0; i < seconds * perSecond; i++)
      for (const f of d.observe(
        obs({ requestId: `r${t0}-${i}`, prompt: `help me with case ${i}`, outputTokens: tokens }),
        t0 + (i * 1000) / perSecond,
      ))
        if (f.detector === 'style-shift') found.push(f.reason);
    return found;
  }

  it('flags a key whose answers turn from short to whole chapters at the same request rate', () => {
    const d = new AnomalyDetectors();
    expect(run(d, T0, 600, 0.7, 140)).toEqual([]);
    const found = run(d, T0 + 600_000, 120, 0.7, 2400);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]).toMatch(
      /answers of the last minute average \d+ output tokens, [\d.]+x this key's usual 140/,
    );
  });

  it('leaves a key whose answers were always long, or grew threefold', () => {
    const long = new AnomalyDetectors();
    expect(run(long, T0, 600, 0.7, 2400)).toEqual([]);
    expect(run(long, T0 + 600_000, 120, 0.7, 2600)).toEqual([]);
    const grew = new AnomalyDetectors();
    expect(run(grew, T0, 600, 0.7, 400)).toEqual([]);
    expect(run(grew, T0 + 600_000, 120, 0.7, 1200)).toEqual([]);
  });
});

describe('distillation', () => {
  /** Seconds after `t0` of the first distillation finding over `seconds` of requests, or null. */
  function firstFinding(
    d: AnomalyDetectors,
    t0: number,
    seconds: number,
    perSecond: number,
    prompt: (i: number) => string,
    tokens: number,
  ): { at: number; reason: string } | null {
    for (let i = 0; i < seconds * perSecond; i++) {
      const t = t0 + (i * 1000) / perSecond;
      for (const f of d.observe(obs({ requestId: `d${t}`, prompt: prompt(i), outputTokens: tokens }), t))
        if (f.detector === 'distillation') return { at: (t - t0) / 1000, reason: f.reason };
    }
    return null;
  }
  const topics = ['photosynthesis', 'tcp', 'inflation', 'tides', 'vaccines', 'compilers', 'dns', 'raft'];
  const sweep = (i: number) =>
    i % 5 === 4
      ? `Summarise ${topics[i % 8]} in a line`
      : `Explain step by step how ${topics[i % 8]} works, ${i}`;

  it('flags a sweep within a minute of its start, though the key was busy with other work before', () => {
    const d = new AnomalyDetectors();
    expect(firstFinding(d, T0, 600, 0.35, (i) => `help me with ticket ${i}`, 300)).toBeNull();
    const f = firstFinding(d, T0 + 600_000, 180, 2.2, sweep, 1200);
    expect(f).not.toBeNull();
    // Five minutes' shares, diluted by the 105 ordinary requests before, took about 100 s.
    expect(f!.at).toBeLessThan(70);
    expect(f!.reason).toMatch(/requests in the last minute ask for step-by-step reasoning/);
  });

  it('leaves an app whose step-by-step questions come from many end users, a few each', () => {
    // A tutoring app: students (end-user ids) ask for step-by-step explanations with long answers.
    const app = new AnomalyDetectors();
    const students = (i: number) => `stu_${Math.floor(i / 3) % 60}`;
    let found: string[] = [];
    for (let i = 0; i < 900; i++) {
      const t = T0 + i * 1000;
      for (const f of app.observe(
        obs({ requestId: `s${i}`, prompt: sweep(i), outputTokens: 700, endUser: students(i) }),
        t,
      ))
        found.push(f.detector);
    }
    expect(found.filter((x) => x === 'distillation')).toEqual([]);
    // The same prompts and answers from one client (no end users, or one): a distillation finding.
    for (const endUser of [null, 'u1']) {
      const one = new AnomalyDetectors();
      found = [];
      for (let i = 0; i < 900; i++)
        for (const f of one.observe(
          obs({ requestId: `s${i}`, prompt: sweep(i), outputTokens: 700, endUser }),
          T0 + i * 1000,
        ))
          found.push(f.detector);
      expect(found).toContain('distillation');
    }
  });

  it('leaves a key that asks the same things with short answers, or only now and then', () => {
    const short = new AnomalyDetectors();
    expect(firstFinding(short, T0, 600, 0.35, (i) => `help me with ticket ${i}`, 300)).toBeNull();
    expect(firstFinding(short, T0 + 600_000, 180, 2.2, sweep, 200)).toBeNull();
    const sometimes = new AnomalyDetectors();
    expect(firstFinding(sometimes, T0, 900, 0.15, sweep, 1200)).toBeNull();
  });
});
