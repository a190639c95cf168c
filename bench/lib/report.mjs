// The markdown tables printed at the end of a run (and pasted into bench/README.md).

const f = (n, digits = 0) =>
  n === undefined || n === null || Number.isNaN(n)
    ? '–'
    : Number(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (n) =>
  n === undefined || n === null || Number.isNaN(n) ? '–' : `${n.toFixed(n < 0.1 ? 3 : 2)}×`;

function table(head, rows) {
  const out = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  return out.join('\n');
}

export function renderReport(results) {
  const parts = [];
  const e = results.env;
  parts.push(
    `Sluice benchmark — ${e.date}, commit ${e.commit}, Node ${e.node}, ${e.cores} cores (${e.cpu}), ` +
      `${e.taskset ? 'target on core 0, stub + load on core 1' : 'no taskset: processes not pinned'}, ` +
      `${e.loadGenerator}, ${results.settings.connections} connections, ${results.settings.rounds} × ${results.settings.duration} s rounds` +
      `${results.settings.quick ? ' (--quick)' : ''}.`,
  );

  const head = headline(results);
  if (head.length) parts.push(`\n### Headline\n\n${head.map((h) => `- ${h}`).join('\n')}`);

  const tp = results.throughput;
  if (tp) {
    parts.push('\n### Throughput (non-streaming chat completions)\n');
    parts.push(
      table(
        ['target', 'req/s', '× bare', 'p50 ms', 'p99 ms', 'CPU µs/req', 'CPU × bare', 'non-2xx + errors'],
        tp.targets.map((t) =>
          t.skipped
            ? [t.name, `skipped: ${t.skipped}`, '', '', '', '', '', '']
            : [
                t.name,
                f(t.rps),
                ratio(t.rpsRatio),
                f(t.p50, 1),
                f(t.p99, 1),
                f(t.cpuUsPerReq, 0),
                ratio(t.cpuRatio),
                f(t.failures),
              ],
        ),
      ),
    );
    if (tp.redisCallsPerRequest !== undefined) {
      parts.push(
        `\nsluice-redis rounds: ${f(tp.redisScriptsPerRequest, 2)} script calls (EVALSHA) per request, ` +
          `${f(tp.redisCallsPerRequest, 2)} Redis commands per request counting those run inside the scripts.`,
      );
    }
  }

  const st = results.streaming;
  if (st) {
    parts.push('\n### Streaming (time to first byte and total, per request)\n');
    parts.push(
      table(
        [
          'target',
          'TTFB p50 ms',
          '× bare',
          'TTFB p99 ms',
          'total p50 ms',
          '× bare',
          'total p99 ms',
          'complete / failed',
        ],
        st.targets.map((t) =>
          t.skipped
            ? [t.name, `skipped: ${t.skipped}`, '', '', '', '', '', '']
            : [
                t.name,
                f(t.ttfbP50, 2),
                ratio(t.ttfbRatio),
                f(t.ttfbP99, 2),
                f(t.totalP50, 2),
                ratio(t.totalRatio),
                f(t.totalP99, 2),
                `${t.complete} / ${t.failed}`,
              ],
        ),
      ),
    );
  }

  const os = st?.outputScreening;
  if (os) {
    const signed = (n) => (n === undefined || Number.isNaN(n) ? '–' : `${n >= 0 ? '+' : ''}${f(n, 2)}`);
    const row = (label, m) => [
      label,
      f(m.ttfbP50, 2),
      f(m.ttfbP99, 2),
      f(m.totalP50, 2),
      f(m.totalP99, 2),
      f(m.cpuUsPerStream, 0),
      `${m.complete} / ${m.failed}`,
    ];
    parts.push(
      '\n### Output screening on vs off (streaming; issue 12: TTFB within 0.3 ms)\n\n' +
        'sluice-memory-output-on (the sluice-memory config: output screening at its defaults) against ' +
        'sluice-memory-output-off (the same config, only `screening.output` off), two processes started and ' +
        `warmed alike, taking turns in blocks of ${f(os.blockRequests)} streamed requests ` +
        `(${os.concurrency} at a time), ${f(os.pairs)} pairs, order alternating; percentiles over all blocks' requests.\n`,
    );
    parts.push(
      table(
        [
          'output screening',
          'TTFB p50 ms',
          'TTFB p99 ms',
          'total p50 ms',
          'total p99 ms',
          'CPU µs/stream',
          'complete / failed',
        ],
        [
          row('on', os.on),
          row('off', os.off),
          [
            'on − off',
            signed(os.ttfbP50Diff),
            signed(os.ttfbP99Diff),
            signed(os.on.totalP50 - os.off.totalP50),
            signed(os.on.totalP99 - os.off.totalP99),
            signed(os.cpuUsPerStreamDiff),
            '',
          ],
        ],
      ),
    );
    const q = os.pairTtfbP50Diff;
    parts.push(
      `\nPer pair of blocks, TTFB p50 on − off: median ${signed(q.median)} ms (quartiles ${signed(q.p25)}, ${signed(q.p75)}).`,
    );
  }

  const mi = results.micro;
  if (mi) {
    parts.push('\n### Micro-benchmarks\n');
    const lim = mi.limiter;
    if (lim && Array.isArray(lim.cases)) {
      // Sluice and rate-limiter-flexible side by side, per store.
      const rows = [];
      for (const store of [...new Set(lim.cases.map((c) => c.store))]) {
        const s1 = lim.cases.find((c) => c.store === store && c.impl === 'sluice');
        const r1 = lim.cases.find((c) => c.store === store && c.impl !== 'sluice');
        rows.push([
          store,
          f(s1?.decisionsPerSec),
          f(r1?.decisionsPerSec),
          ratio(s1 && r1 ? s1.decisionsPerSec / r1.decisionsPerSec : undefined),
        ]);
      }
      parts.push(
        `Limiter: decisions/s for a request checking ${lim.limitsPerRequest ?? 4} limits, ${lim.concurrency ?? '?'} in flight.\n`,
      );
      parts.push(table(['store', 'sluice', 'rate-limiter-flexible', 'sluice / rlf'], rows));
    } else if (lim) {
      parts.push(table(['figure', 'value'], flatRows('limiter', lim)));
    }
    const az = mi.authz;
    if (az?.nsPerCall) {
      parts.push(`\nAuthorization: ns per call (budget ${f(az.budgetNs)} ns).\n`);
      parts.push(
        table(
          ['check', 'ns'],
          Object.entries(az.nsPerCall).map(([k, v]) => [k, f(v, 0)]),
        ),
      );
    } else if (az) {
      parts.push(`\n${table(['figure', 'value'], flatRows('authz', az))}`);
    }
    for (const [k, v] of Object.entries(mi)) {
      if (k !== 'limiter' && k !== 'authz') parts.push(`\n${table(['figure', 'value'], flatRows(k, v))}`);
    }
  }

  const ac = results.accuracy;
  if (ac) {
    parts.push('\n### Accuracy (several Sluice instances on one Redis)\n');
    if (ac.skipped) parts.push(`skipped: ${ac.skipped}`);
    else {
      parts.push(
        table(
          [
            'configuration',
            'instances',
            'keys × limit',
            'sent',
            'admitted',
            'allowed',
            'over-admitted',
            'Redis round trips / request',
            '/ admitted request',
            'degraded-mode episodes',
          ],
          ac.runs.map((r) =>
            r.skipped
              ? [r.label, `skipped: ${r.skipped}`, '', '', '', '', '', '', '', '']
              : [
                  r.label,
                  f(r.instances),
                  `${r.keys} × ${r.limit} / ${r.window}`,
                  f(r.sent),
                  f(r.admitted),
                  f(r.allowed),
                  f(r.overAdmitted),
                  f(r.roundTripsPerRequest, 2),
                  f(r.roundTripsPerAdmitted, 2),
                  f(r.degradedEpisodes),
                ],
          ),
        ),
      );
      for (const r of ac.runs) {
        if (r.unexpected) parts.push(`\n${r.label}: unexpected responses ${JSON.stringify(r.unexpected)}`);
      }
    }
  }

  const me = results.memory;
  if (me) {
    parts.push('\n### Memory (resident set of one Sluice process, memory store)\n');
    if (me.skipped) parts.push(`skipped: ${me.skipped}`);
    else {
      parts.push(
        table(
          ['state', 'VmRSS MiB'],
          [
            ['idle after start', f(me.idleKiB / 1024, 1)],
            [`after ${f(me.keys)} requests from one end user`, f(me.sameUserKiB / 1024, 1)],
            [
              `after ${f(me.keys)} more from ${f(me.keys)} distinct end users (one bucket each)`,
              f(me.afterKiB / 1024, 1),
            ],
            ['bytes per limited key (difference of the last two / keys)', f(me.bytesPerKey, 0)],
          ],
        ),
      );
      if (me.non2xx || me.errors)
        parts.push(`\n(${f(me.non2xx)} non-2xx responses, ${f(me.errors)} errors while filling)`);
    }
  }

  if (results.profile) {
    parts.push('\n### CPU profile of sluice-memory under load\n');
    const pr = results.profile;
    if (pr.skipped) parts.push(`skipped: ${pr.skipped}`);
    else {
      parts.push(
        `${f(pr.rpsWhileProfiled)} req/s while profiled. Stage = innermost Sluice file on the stack ` +
          '(library work it causes included); own = self time of the function itself, by file or package.\n',
      );
      const n = 14;
      const rows = [];
      for (let i = 0; i < n; i++) {
        const p = pr.pipeline?.[i];
        const a = pr.stages[i];
        const b = pr.owners?.[i];
        if (!p && !a && !b) break;
        const cell = (x) => (x ? [x.stage, `${(x.share * 100).toFixed(1)} %`] : ['', '']);
        rows.push([...cell(p), ...cell(a), ...cell(b)]);
      }
      parts.push(
        table(
          ['pipeline stage', 'share', 'file (innermost Sluice frame)', 'share', 'own (self time)', 'share'],
          rows,
        ),
      );
    }
  }
  if (results.notes?.length) parts.push(`\nNotes:\n${results.notes.map((n) => `- ${n}`).join('\n')}`);
  return parts.join('\n');
}

function flatRows(section, v) {
  if (v?.skipped) return [[section, `skipped: ${v.skipped}`]];
  return Object.entries(flatten(v)).map(([k, val]) => [
    `${section}.${k}`,
    typeof val === 'number' ? f(val, val < 100 ? 3 : 0) : String(val),
  ]);
}

function flatten(obj, prefix = '', out = {}) {
  if (obj === null || typeof obj !== 'object') {
    out[prefix || 'value'] = obj;
    return out;
  }
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object') flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

/** One line per claim the issue asks for, from whatever sections ran. */
function headline(results) {
  const out = [];
  const rows = Object.fromEntries(
    (results.throughput?.targets ?? []).filter((t) => !t.skipped).map((t) => [t.name, t]),
  );
  for (const name of ['sluice-memory', 'sluice-memory-off', 'sluice-redis', 'fastify-min']) {
    const t = rows[name];
    if (t)
      out.push(
        `${name} / bare: ${ratio(t.rpsRatio)} the throughput, ${ratio(t.cpuRatio)} the CPU per request`,
      );
  }
  for (const name of ['sluice-memory', 'sluice-redis']) {
    if (rows[name] && rows.portkey)
      out.push(`${name} / portkey: ${ratio(rows[name].rps / rows.portkey.rps)} the throughput`);
  }
  const os = results.streaming?.outputScreening;
  if (os) {
    out.push(
      `streaming TTFB, output screening on vs off: p50 ${f(os.on.ttfbP50, 2)} vs ${f(os.off.ttfbP50, 2)} ms ` +
        `(${os.ttfbP50Diff >= 0 ? '+' : ''}${f(os.ttfbP50Diff, 2)} ms), p99 ${f(os.on.ttfbP99, 2)} vs ${f(os.off.ttfbP99, 2)} ms ` +
        `(${os.ttfbP99Diff >= 0 ? '+' : ''}${f(os.ttfbP99Diff, 2)} ms)`,
    );
  }
  const lim = results.micro?.limiter;
  if (Array.isArray(lim?.cases)) {
    for (const store of [...new Set(lim.cases.map((c) => c.store))]) {
      const s1 = lim.cases.find((c) => c.store === store && c.impl === 'sluice');
      const r1 = lim.cases.find((c) => c.store === store && c.impl !== 'sluice');
      if (s1 && r1) {
        out.push(
          `limiter, ${store}: sluice ${f(s1.decisionsPerSec)} decisions/s, rate-limiter-flexible ${f(r1.decisionsPerSec)} (${ratio(s1.decisionsPerSec / r1.decisionsPerSec)})`,
        );
      }
    }
  }
  for (const r of results.accuracy?.runs ?? []) {
    if (r.skipped) continue;
    out.push(
      `accuracy, ${r.label}: ${r.instances} instances admitted ${r.admitted} of ${r.allowed} allowed (over-admitted ${r.overAdmitted}), ${f(r.roundTripsPerRequest, 2)} Redis round trips per request${r.degradedEpisodes ? `, ${r.degradedEpisodes} degraded-mode episodes` : ''}`,
    );
  }
  const me = results.memory;
  if (me && !me.skipped) {
    out.push(
      `memory: ${f(me.idleKiB / 1024, 1)} MiB idle, ${f(me.sameUserKiB / 1024, 1)} MiB after ${f(me.keys)} requests from one end user, ${f(me.afterKiB / 1024, 1)} MiB after ${f(me.keys)} more from distinct end users: ${f(me.bytesPerKey)} B per limited key`,
    );
  }
  return out;
}
