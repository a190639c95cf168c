/**
 * The developer portal: sign in with an API key (exchanged for a session cookie; the key is not
 * kept), then usage, limits, refusals, exceptions and recommendations, all from the documented
 * /sluice/v1 API.
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api, fmtNum, fmtTime, setCsrf } from '../shared/api';
import '../shared/style.css';
import { Chart, ErrorText, Tabs, useHashRoute, useLoad } from '../shared/ui';

interface Session {
  csrfToken: string;
  key: string;
  tenant: string;
  expiresAt: string;
}
interface Limit {
  id: string;
  per: string;
  kind: string;
  limit: number;
  used: number;
  remaining: number;
  resetAt: string;
  window: number;
  mode: string;
}
interface Paused {
  capability: string;
  reason: string;
  caseId: string;
  until: string;
  appeal: string;
}
interface Deprecation {
  kind: 'model' | 'route' | 'action' | 'key';
  name: string;
  announced: string;
  sunset: string;
  status: 'deprecated' | 'retired';
  replacement: string | null;
  link: string | null;
}
interface Me {
  key: { id: string; tenant: string; tier: string };
  scopes: string[];
  models: string[];
  limits: Limit[];
  /** Capabilities paused by abuse detection pending review (absent on gateways without it). */
  paused?: Paused[];
  /** What this key can use that is deprecated or retired (absent on older gateways). */
  deprecations?: Deprecation[];
}
interface UsagePoint {
  group: string;
  bucketStart: number;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  usd: number;
}
interface Exception {
  id: string;
  key: string | null;
  status: string;
  justification: string;
  requested: { limits: { id: string; limit: number }[]; models: string[]; scopes: string[] };
  granted: Exception['requested'] | null;
  duration: number;
  createdAt: string;
  expiresAt: string | null;
  requestExpiresAt: string;
  note: string | null;
}

function SignIn(props: { onSignedIn: (s: Session) => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('apiKey') as HTMLInputElement;
    setBusy(true);
    setError(null);
    try {
      const s = await api<Session>('/portal/session', { method: 'POST', body: { apiKey: input.value.trim() } });
      // The key leaves the page's memory at once: only the session cookie (HttpOnly) remains.
      input.value = '';
      props.onSignedIn(s);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>Sluice developer portal</h1>
      <p class="muted">Sign in with one of your API keys. It is exchanged for a 30-minute session and not stored.</p>
      <form class="stack" onSubmit={submit}>
        <label>
          API key
          <input name="apiKey" type="password" autocomplete="off" required placeholder="sk-sluice-…" />
        </label>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorText error={error} />
      </form>
    </main>
  );
}

const METRICS: [keyof UsagePoint, string][] = [
  ['requests', 'Requests'],
  ['inputTokens', 'Input tokens'],
  ['outputTokens', 'Output tokens'],
  ['usd', 'Spend (USD)'],
];

function UsagePage() {
  const [groupBy, setGroupBy] = useState('model');
  const [bucket, setBucket] = useState('day');
  const [days, setDays] = useState('30');
  const [metric, setMetric] = useState<keyof UsagePoint>('requests');
  const [data, error] = useLoad(
    () => api<{ data: UsagePoint[] }>(`/sluice/v1/usage?groupBy=${groupBy}&bucket=${bucket}&days=${days}`),
    [groupBy, bucket, days],
  );
  const chart = useMemo(() => {
    const rows = data?.data ?? [];
    const xs = [...new Set(rows.map((r) => r.bucketStart))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const groups = new Map<string, (number | null)[]>();
    const totals = new Map<string, UsagePoint>();
    for (const r of rows) {
      let vals = groups.get(r.group);
      if (!vals) {
        vals = xs.map(() => 0);
        groups.set(r.group, vals);
      }
      vals[index.get(r.bucketStart)!] = r[metric] as number;
      const t = totals.get(r.group) ?? { ...r, requests: 0, inputTokens: 0, outputTokens: 0, usd: 0 };
      t.requests += r.requests;
      t.inputTokens += r.inputTokens;
      t.outputTokens += r.outputTokens;
      t.usd += r.usd;
      totals.set(r.group, t);
    }
    return {
      x: xs.map((x) => x / 1000),
      series: [...groups].map(([name, values]) => ({ name, values })),
      totals: [...totals.values()],
    };
  }, [data, metric]);
  const metricName = METRICS.find(([m]) => m === metric)![1];
  return (
    <section aria-labelledby="usage-h">
      <h2 id="usage-h">Usage over time</h2>
      <form class="inline" onSubmit={(e) => e.preventDefault()}>
        <label>
          Show
          <select name="metric" value={metric} onChange={(e) => setMetric(e.currentTarget.value as keyof UsagePoint)}>
            {METRICS.map(([m, t]) => (
              <option key={m} value={m}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          By
          <select name="groupBy" value={groupBy} onChange={(e) => setGroupBy(e.currentTarget.value)}>
            <option value="model">Model</option>
            <option value="endpoint">Endpoint</option>
            <option value="key">Key (every key of your tenant)</option>
          </select>
        </label>
        <label>
          Per
          <select name="bucket" value={bucket} onChange={(e) => setBucket(e.currentTarget.value)}>
            <option value="day">Day</option>
            <option value="hour">Hour</option>
          </select>
        </label>
        <label>
          Period
          <select name="days" value={days} onChange={(e) => setDays(e.currentTarget.value)}>
            <option value="1">Last 24 hours</option>
            <option value="7">Last 7 days</option>
            <option value="30">Last 30 days</option>
            <option value="90">Last 90 days</option>
          </select>
        </label>
      </form>
      <ErrorText error={error} />
      {data && chart.x.length === 0 && <p class="muted">No usage recorded in this period.</p>}
      {chart.x.length > 0 && (
        <Chart
          x={chart.x}
          series={chart.series}
          label={`${metricName} per ${bucket} by ${groupBy}, ${chart.series.length} series over ${chart.x.length} points`}
        />
      )}
      {chart.totals.length > 0 && (
        <table>
          <caption>Totals by {groupBy}</caption>
          <thead>
            <tr>
              <th scope="col">{groupBy}</th>
              <th scope="col" class="num">
                Requests
              </th>
              <th scope="col" class="num">
                Input tokens
              </th>
              <th scope="col" class="num">
                Output tokens
              </th>
              <th scope="col" class="num">
                Spend (USD)
              </th>
            </tr>
          </thead>
          <tbody>
            {chart.totals.map((t) => (
              <tr key={t.group}>
                <th scope="row">{t.group}</th>
                <td class="num">{fmtNum(t.requests)}</td>
                <td class="num">{fmtNum(t.inputTokens)}</td>
                <td class="num">{fmtNum(t.outputTokens)}</td>
                <td class="num">{fmtNum(t.usd, 4)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function windowText(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

function LimitsPage(props: { me: Me | null; error: unknown }) {
  const me = props.me;
  return (
    <section aria-labelledby="limits-h">
      <h2 id="limits-h">Limits</h2>
      <ErrorText error={props.error} />
      {me && (
        <>
          <p>
            Key <code>{me.key.id}</code>, tenant <code>{me.key.tenant}</code>, tier <code>{me.key.tier}</code>.
            Models: {me.models.join(', ') || '—'}. Actions: {me.scopes.join(', ') || '—'}.
          </p>
          <table id="limits">
            <caption>Limits</caption>
            <thead>
              <tr>
                <th scope="col">Limit</th>
                <th scope="col">Counted per</th>
                <th scope="col">Counts</th>
                <th scope="col">Window</th>
                <th scope="col" class="num">
                  Limit
                </th>
                <th scope="col" class="num">
                  Used
                </th>
                <th scope="col" class="num">
                  Remaining
                </th>
                <th scope="col">Resets at</th>
                <th scope="col">Mode</th>
              </tr>
            </thead>
            <tbody>
              {me.limits.map((l, i) => (
                <tr key={`${l.id}-${i}`}>
                  <th scope="row">{l.id}</th>
                  <td>{l.per}</td>
                  <td>{l.kind}</td>
                  <td>{windowText(l.window)}</td>
                  <td class="num">{fmtNum(l.limit, 6)}</td>
                  <td class="num">{fmtNum(l.used, 6)}</td>
                  <td class="num">{fmtNum(l.remaining, 6)}</td>
                  <td>{fmtTime(l.resetAt)}</td>
                  <td>{l.mode}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {me.limits.length === 0 && <p class="muted">No limits apply to this key.</p>}
        </>
      )}
    </section>
  );
}

function RefusalsPage() {
  const [data, error] = useLoad(
    () =>
      api<{
        data: { at: number; keyId: string; action: string; model: string; decision: string; reason: string; message: string }[];
      }>('/sluice/v1/refusals?days=7'),
    [],
  );
  return (
    <section aria-labelledby="ref-h">
      <h2 id="ref-h">Recent 429s and refusals</h2>
      <ErrorText error={error} />
      {data && data.data.length === 0 && <p class="muted">Nothing refused in the last 7 days.</p>}
      {data && data.data.length > 0 && (
        <table>
          <caption>Refused requests, last 7 days (newest first)</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Key</th>
              <th scope="col">Action</th>
              <th scope="col">Model</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {data.data.map((r, i) => (
              <tr key={i}>
                <td>{fmtTime(r.at)}</td>
                <td>{r.keyId ?? '—'}</td>
                <td>{r.action}</td>
                <td>{r.model ?? '—'}</td>
                <td>
                  <code>{r.reason}</code> {r.message}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function grantText(g: Exception['requested']): string {
  return [
    ...g.limits.map((l) => `${l.id} → ${fmtNum(l.limit, 6)}`),
    ...g.models.map((m) => `model ${m}`),
    ...g.scopes.map((s) => `action ${s}`),
  ].join('; ');
}

function ExceptionsPage(props: { me: Me | null }) {
  const [data, error, reload] = useLoad(
    () => api<{ data: Exception[]; policy: { maxDuration: number } }>('/sluice/v1/exceptions'),
    [],
  );
  const [sendError, setSendError] = useState<unknown>(null);
  const [sent, setSent] = useState<string | null>(null);
  const maxHours = data ? Math.floor(data.policy.maxDuration / 3600) : 336;
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const v = (n: string) => (f.elements.namedItem(n) as HTMLInputElement).value.trim();
    const list = (n: string) =>
      v(n)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    setSendError(null);
    setSent(null);
    try {
      const body: Record<string, unknown> = {
        justification: v('justification'),
        duration: Math.round(Number(v('hours')) * 3600),
        models: list('models'),
        scopes: list('scopes'),
        tenantWide: (f.elements.namedItem('tenantWide') as HTMLInputElement).checked,
      };
      if (v('limitId') && v('limitAmount')) body.limits = [{ id: v('limitId'), limit: Number(v('limitAmount')) }];
      const r = await api<Exception>('/sluice/v1/exceptions', { method: 'POST', body });
      setSent(r.id);
      f.reset();
      reload();
    } catch (err) {
      setSendError(err);
    }
  };
  const limitIds = [...new Set(props.me?.limits.map((l) => l.id) ?? [])];
  return (
    <section aria-labelledby="exc-h">
      <h2 id="exc-h">Exceptions</h2>
      <p class="muted">
        Ask for a temporary higher limit, an extra model or an extra action. An operator reviews it; once approved
        it applies at once and ends by itself at its expiry (at most {maxHours} hours).
      </p>
      <h3>Request an exception</h3>
      <form class="stack" onSubmit={submit}>
        <label>
          Limit to raise
          <select name="limitId">
            <option value="">(none)</option>
            {limitIds.map((id) => (
              <option key={id} value={id}>
                {id}
              </option>
            ))}
          </select>
        </label>
        <label>
          New amount per window
          <input name="limitAmount" type="number" min="1" step="any" inputMode="decimal" />
        </label>
        <label>
          Extra models (comma-separated)
          <input name="models" type="text" autocomplete="off" />
        </label>
        <label>
          Extra actions (comma-separated, e.g. images.generate)
          <input name="scopes" type="text" autocomplete="off" />
        </label>
        <label>
          Duration (hours)
          <input name="hours" type="number" min="0.001" step="any" max={maxHours} required value="24" />
        </label>
        <label>
          Justification
          <textarea name="justification" required minLength={10} maxLength={2000} />
        </label>
        <label>
          <span>
            <input name="tenantWide" type="checkbox" /> For every key of my tenant
          </span>
        </label>
        <button type="submit">Request exception</button>
        <ErrorText error={sendError} />
        {sent && (
          <p class="ok" role="status">
            Requested: {sent}
          </p>
        )}
      </form>
      <ErrorText error={error} />
      {data && (
        <table id="exceptions">
          <caption>Your exception requests</caption>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Status</th>
              <th scope="col">Asked</th>
              <th scope="col">Granted</th>
              <th scope="col">Ends</th>
              <th scope="col">Note</th>
            </tr>
          </thead>
          <tbody>
            {data.data.map((x) => (
              <tr key={x.id}>
                <td>
                  <code>{x.id}</code>
                </td>
                <td>{x.status}</td>
                <td>{grantText(x.requested)}</td>
                <td>{x.granted ? grantText(x.granted) : '—'}</td>
                <td>{fmtTime(x.status === 'pending' ? x.requestExpiresAt : x.expiresAt)}</td>
                <td>{x.note ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function RecommendationsPage() {
  const [data, error] = useLoad(
    () =>
      api<{ data: { id: string; title: string; detail: string; saving: string }[] }>(
        '/sluice/v1/recommendations?days=30',
      ),
    [],
  );
  return (
    <section aria-labelledby="rec-h">
      <h2 id="rec-h">Recommendations</h2>
      <p class="muted">Computed from your own traffic over the last 30 days.</p>
      <ErrorText error={error} />
      {data && data.data.length === 0 && <p>Nothing to recommend: your traffic shows none of the patterns we check.</p>}
      <div class="cards">
        {data?.data.map((r) => (
          <article class="card" key={r.id}>
            <h3>{r.title}</h3>
            <p>{r.detail}</p>
            <p>
              <strong>Expected saving:</strong> {r.saving}
            </p>
          </article>
        ))}
      </div>
    </section>
  );
}


/**
 * Shown above every page: quarantine notices (what is paused, why, when it comes back, how to appeal)
 * and the deprecations that touch this key, both from /sluice/v1/me.
 */
function Notices(props: { me: Me | null }) {
  const paused = props.me?.paused ?? [];
  const deps = props.me?.deprecations ?? [];
  if (paused.length === 0 && deps.length === 0) return null;
  return (
    <section class="notices" aria-label="Notices">
      {paused.map((p) => (
        <div class="notice" key={`${p.caseId}-${p.capability}`} id={`paused-${p.caseId}`}>
          <h3>{p.capability === 'all capabilities' ? 'All capabilities are' : `${p.capability} is`} paused pending review</h3>
          <p>
            <strong>Why:</strong> {p.reason} (case <code>{p.caseId}</code>).
          </p>
          <p>
            <strong>Expected recovery:</strong> {fmtTime(p.until)} at the latest; sooner if an operator releases it
            after review.
          </p>
          <p>
            <strong>To appeal:</strong> {p.appeal}.
          </p>
        </div>
      ))}
      {deps.length > 0 && (
        <div class="notice">
          <table id="deprecations">
            <caption>Deprecated things you use</caption>
            <thead>
              <tr>
                <th scope="col">What</th>
                <th scope="col">Status</th>
                <th scope="col">Announced</th>
                <th scope="col">Sunset</th>
                <th scope="col">Use instead</th>
                <th scope="col">Notice</th>
              </tr>
            </thead>
            <tbody>
              {deps.map((d) => (
                <tr key={`${d.kind}-${d.name}`}>
                  <th scope="row">
                    {d.kind} <code>{d.name}</code>
                  </th>
                  <td>{d.status === 'retired' ? 'retired: calls get 410 SLUICE_SUNSET' : 'deprecated'}</td>
                  <td>{fmtTime(d.announced)}</td>
                  <td>{fmtTime(d.sunset)}</td>
                  <td>{d.replacement ?? '—'}</td>
                  <td>{d.link ? <a href={d.link} rel="noopener noreferrer">{`Notice for ${d.name}`}</a> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const TABS: [string, string][] = [
  ['usage', 'Usage'],
  ['limits', 'Limits'],
  ['refusals', 'Refusals'],
  ['exceptions', 'Exceptions'],
  ['recommendations', 'Recommendations'],
];

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checked, setChecked] = useState(false);
  const route = useHashRoute('usage');
  useEffect(() => {
    api<Session>('/portal/session').then(
      (s) => {
        setCsrf(s.csrfToken);
        setSession(s);
        setChecked(true);
      },
      () => setChecked(true),
    );
  }, []);
  const [me, meError] = useLoad(
    () => (session ? api<Me>('/sluice/v1/me') : Promise.resolve(null)),
    [session, route],
  );
  useEffect(() => {
    if (meError instanceof ApiError && meError.status === 401) setSession(null);
  }, [meError]);
  if (!checked) return null;
  if (!session)
    return (
      <SignIn
        onSignedIn={(s) => {
          setCsrf(s.csrfToken);
          setSession(s);
        }}
      />
    );
  const signOut = async () => {
    await api('/portal/session', { method: 'DELETE' }).catch(() => {});
    setCsrf(null);
    setSession(null);
  };
  return (
    <>
      <header class="top">
        <h1>Sluice developer portal</h1>
        <span class="who">
          tenant {session.tenant} · key {session.key}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <Tabs tabs={TABS} current={route} label="Portal sections" />
      <main>
        <Notices me={me} />
        {route === 'usage' && <UsagePage />}
        {route === 'limits' && <LimitsPage me={me} error={meError} />}
        {route === 'refusals' && <RefusalsPage />}
        {route === 'exceptions' && <ExceptionsPage me={me} />}
        {route === 'recommendations' && <RecommendationsPage />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
