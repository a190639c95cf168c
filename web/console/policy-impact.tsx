/**
 * The Policy page's two questions before and after a change (issue 19): **Impact** replays the
 * recorded calls of a period against the edited candidate (`POST /admin/v1/policy/impact`) and shows
 * what would change; **Since last apply** compares the traffic before and after the last apply
 * (`GET /admin/v1/policy/watch`), flags a regression and offers the rollback it names.
 */
import { useState } from 'preact/hooks';
import { ApiError, api, fmtNum, fmtTime } from '../shared/api';
import { ErrorText, useLoad } from '../shared/ui';
import { OtpField, otpHeaders } from './otp';

interface ChangedCall {
  keyId: string;
  tenantId: string;
  action: string;
  model: string;
  before: string;
  after: string;
}

interface ImpactReport {
  replayed: number;
  skipped: { reason: string; count: number }[];
  newlyRefused: ChangedCall[];
  newlyAllowed: ChangedCall[];
  byTenant: Record<string, number>;
  byAction: Record<string, number>;
  byModel: Record<string, number>;
  byCode: Record<string, number>;
  limitsBinding: Record<string, number>;
  keysLosingAccess: string[];
  missing: string[];
}

interface Figures {
  minutes: number;
  requests: number;
  errorRate: number | null;
  limitedRate: number | null;
  addedLatencyMs: number | null;
  throughput: number;
}

interface WatchReport {
  version: number | null;
  previous: number | null;
  appliedAt: string;
  before: Figures;
  after: Figures;
  regressions: string[];
  verdict: 'ok' | 'regressed' | 'not enough traffic';
  rollback: string;
}

const SINCE: [string, string][] = [
  ['1h', 'the last hour'],
  ['24h', 'the last 24 hours'],
  ['7d', 'the last 7 days'],
];

/** Changed calls grouped by who, what and how the decision moved, most frequent first. */
function groups(r: ImpactReport): (ChangedCall & { calls: number })[] {
  const m = new Map<string, ChangedCall & { calls: number }>();
  for (const c of [...r.newlyRefused, ...r.newlyAllowed]) {
    const k = [c.tenantId, c.keyId, c.action, c.model, c.before, c.after].join('\u0000');
    const g = m.get(k) ?? { ...c, calls: 0 };
    g.calls++;
    m.set(k, g);
  }
  return [...m.values()].sort((a, b) => b.calls - a.calls);
}

function Counts(props: { id: string; caption: string; head: string; rows: Record<string, number> }) {
  const rows = Object.entries(props.rows).sort((a, b) => b[1] - a[1]);
  if (rows.length === 0) return null;
  return (
    <table id={props.id}>
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">{props.head}</th>
          <th scope="col" class="num">
            Calls
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([k, n]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td class="num">{fmtNum(n)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ImpactResult(props: { r: ImpactReport }) {
  const r = props.r;
  const changes = groups(r);
  return (
    <div id="impact-result">
      <p role="status">
        Replayed {fmtNum(r.replayed)} recorded call(s): <strong>{fmtNum(r.newlyRefused.length)} newly refused</strong>,{' '}
        {fmtNum(r.newlyAllowed.length)} newly allowed
        {r.skipped.length > 0 && ` (skipped: ${r.skipped.map((s) => `${s.count} ${s.reason}`).join('; ')})`}.
      </p>
      {changes.length > 0 ? (
        <table id="impact-changes">
          <caption>Before and after: calls whose decision would change</caption>
          <thead>
            <tr>
              <th scope="col">Tenant</th>
              <th scope="col">Key</th>
              <th scope="col">Action</th>
              <th scope="col">Model</th>
              <th scope="col">Before (running)</th>
              <th scope="col">After (candidate)</th>
              <th scope="col" class="num">
                Calls
              </th>
            </tr>
          </thead>
          <tbody>
            {changes.map((c) => (
              <tr key={`${c.keyId}-${c.action}-${c.model}-${c.before}-${c.after}`}>
                <td>{c.tenantId}</td>
                <td>
                  <code>{c.keyId}</code>
                </td>
                <td>{c.action}</td>
                <td>{c.model}</td>
                <td>{c.before}</td>
                <td>{c.after}</td>
                <td class="num">{fmtNum(c.calls)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No recorded call would be decided differently.</p>
      )}
      <div>
        <Counts id="impact-by-tenant" caption="Newly refused by tenant" head="Tenant" rows={r.byTenant} />
        <Counts id="impact-by-action" caption="Newly refused by action" head="Action" rows={r.byAction} />
        <Counts id="impact-by-model" caption="Newly refused by model" head="Model" rows={r.byModel} />
        <Counts id="impact-by-rule" caption="Newly refused by rule (code)" head="Rule" rows={r.byCode} />
        <Counts id="impact-limits" caption="Limits that would bind" head="Limit" rows={r.limitsBinding} />
      </div>
      <h4>Keys that would lose access</h4>
      {r.keysLosingAccess.length > 0 ? (
        <ul id="impact-keys">
          {r.keysLosingAccess.map((k) => (
            <li key={k}>
              <code>{k}</code>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">None: every key allowed in the period keeps at least one allowed call.</p>
      )}
      <h4>Not recorded, so not replayed (missing, not guessed)</h4>
      <ul id="impact-missing">
        {r.missing.map((m) => (
          <li key={m}>{m}</li>
        ))}
      </ul>
    </div>
  );
}

/** Impact of the edited candidate on the calls recorded since 1 h, 24 h or 7 d ago. */
export function ImpactPanel(props: { source: string }) {
  const [since, setSince] = useState('24h');
  const [report, setReport] = useState<ImpactReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async () => {
    setError(null);
    setBusy(true);
    try {
      setReport(await api<ImpactReport>('/admin/v1/policy/impact', { method: 'POST', body: { source: props.source, since } }));
    } catch (err) {
      setReport(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="impact-h">
      <h3 id="impact-h">Impact of the edited policy on recorded traffic</h3>
      <form
        class="inline"
        aria-label="Impact replay"
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <label>
          Replay the calls of
          <select name="since" value={since} onChange={(e) => setSince(e.currentTarget.value)}>
            {SINCE.map(([v, t]) => (
              <option key={v} value={v}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="secondary" disabled={busy}>
          {busy ? 'Replaying…' : 'Run impact'}
        </button>
      </form>
      <ErrorText error={error} />
      {report && <ImpactResult r={report} />}
    </section>
  );
}

const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`);
const ms = (v: number | null) => (v === null ? '—' : `${v.toFixed(2)} ms`);

/** Before/after of the last apply, its verdict, and the rollback it names (admins: a button, step-up when asked). */
export function WatchPanel(props: { isAdmin: boolean; version: number | undefined; onRolledBack: (msg: string) => void }) {
  const [minutes, setMinutes] = useState('10');
  const [w, error] = useLoad(() => api<WatchReport>(`/admin/v1/policy/watch?minutes=${minutes}`), [minutes, props.version]);
  const [rbError, setRbError] = useState<unknown>(null);
  const stepUp = rbError instanceof ApiError && rbError.code === 'SLUICE_STEP_UP_REQUIRED';
  const rollback = async (version: number) => {
    setRbError(null);
    try {
      const r = await api<{ version: number }>('/admin/v1/policy/rollback', {
        method: 'POST',
        body: { version },
        headers: otpHeaders('watch-otp'),
      });
      props.onRolledBack(`Rolled back: now version ${r.version}`);
    } catch (err) {
      setRbError(err);
    }
  };
  const rows: [string, (f: Figures) => string][] = [
    ['Minutes', (f) => fmtNum(f.minutes, 2)],
    ['Requests', (f) => fmtNum(f.requests)],
    ['Error rate', (f) => pct(f.errorRate)],
    ['429 rate', (f) => pct(f.limitedRate)],
    ['Added latency', (f) => ms(f.addedLatencyMs)],
    ['Throughput', (f) => `${fmtNum(f.throughput, 1)}/min`],
  ];
  return (
    <section aria-labelledby="watch-h" id="policy-watch">
      <h3 id="watch-h">Since last apply</h3>
      <label>
        Compare minutes before and after
        <select value={minutes} onChange={(e) => setMinutes(e.currentTarget.value)}>
          {['10', '30', '60', '1440'].map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <ErrorText error={error} />
      {w && (
        <>
          <p>
            Version <strong>{w.version ?? '—'}</strong> applied {fmtTime(w.appliedAt)} (previous: {w.previous ?? '—'}).
            Verdict: <strong class={w.verdict === 'regressed' ? 'error' : 'ok'} id="watch-verdict">{w.verdict}</strong>
          </p>
          <table id="watch-figures">
            <caption>Traffic before and after the last apply</caption>
            <thead>
              <tr>
                <th scope="col">Figure</th>
                <th scope="col" class="num">Before</th>
                <th scope="col" class="num">After</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(([name, f]) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td class="num">{f(w.before)}</td>
                  <td class="num">{f(w.after)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {w.regressions.length > 0 && (
            <ul class="error" role="alert" id="watch-regressions">
              {w.regressions.map((r) => (
                <li key={r}>{r}</li>
              ))}
            </ul>
          )}
          <p>
            Roll back with: <code id="watch-rollback">{w.rollback}</code>
          </p>
          {props.isAdmin && w.previous !== null && (
            <form
              class="inline"
              aria-label="Roll back the last apply"
              onSubmit={(e) => {
                e.preventDefault();
                void rollback(w.previous!);
              }}
            >
              <OtpField id="watch-otp" />
              <button type="submit" class="danger">
                Roll back to version {w.previous}
              </button>
            </form>
          )}
          {stepUp && <p>Rolling back needs step-up: enter a fresh one-time code from your authenticator and try again.</p>}
          <ErrorText error={rbError} />
        </>
      )}
    </section>
  );
}
