/**
 * The admin console on the management plane: sign in with a username and password (session cookie,
 * CSRF token in memory), then tenants and keys, policy versions, the exception queue, audit, alerts
 * and the case queue, all through the documented /admin/v1 API with the user's role.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, fmtTime, setCsrf } from '../shared/api';
import '../shared/style.css';
import { ErrorText, Tabs, useHashRoute, useLoad } from '../shared/ui';
import { CasesPage } from './cases';
import { OtpField, otpHeaders } from './otp';
import { ImpactPanel } from './policy-impact';
import { WatchPanel } from './policy-watch';

interface Session {
  csrfToken: string;
  user: string;
  role: 'admin' | 'operator' | 'auditor';
}

function SignIn(props: { onSignedIn: (s: Session) => void }) {
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const v = (n: string) => (f.elements.namedItem(n) as HTMLInputElement).value;
    try {
      const s = await api<Session>('/console/session', {
        method: 'POST',
        body: { username: v('username'), password: v('password') },
      });
      (f.elements.namedItem('password') as HTMLInputElement).value = '';
      props.onSignedIn(s);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <main class="signin">
      <h1>Sluice console</h1>
      <form class="stack" onSubmit={submit}>
        <label>
          Username
          <input name="username" type="text" autocomplete="username" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <button type="submit">Sign in</button>
        <ErrorText error={error} />
      </form>
    </main>
  );
}

interface Key {
  id: string;
  tenant: string;
  tier: string;
  name: string | null;
  status: string;
  createdAt: string;
  lastUsedAt: string | null;
  rotationGraceEndsAt: string | null;
}

function SecretOnce(props: { secret: string; onDone: () => void }) {
  return (
    <div class="notice" role="alert">
      <p>
        <strong>Copy this secret now.</strong> It is shown once; Sluice stores only its hash.
      </p>
      <p class="secret" id="show-once-secret">
        {props.secret}
      </p>
      <button type="button" onClick={props.onDone}>
        I have copied it
      </button>
    </div>
  );
}

function KeysPage(props: { session: Session }) {
  const canWrite = props.session.role !== 'auditor';
  const [tenants] = useLoad(() => api<{ data: { id: string; name: string }[] }>('/admin/v1/tenants'), []);
  const [keys, error, reload] = useLoad(() => api<{ data: Key[] }>('/admin/v1/keys?all=true'), []);
  const [secret, setSecret] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const act = async (fn: () => Promise<{ key?: string }>) => {
    setActionError(null);
    try {
      const r = await fn();
      if (r?.key) setSecret(r.key);
      reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const create = (e: Event) => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const v = (n: string) => (f.elements.namedItem(n) as HTMLInputElement).value.trim();
    void act(() =>
      api('/admin/v1/keys', {
        method: 'POST',
        body: { tenant: v('tenant'), tier: v('tier') || 'default', name: v('name') || undefined },
      }),
    );
  };
  return (
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">Tenants and keys</h2>
      {secret && <SecretOnce secret={secret} onDone={() => setSecret(null)} />}
      <ErrorText error={actionError} />
      {canWrite && (
        <form class="inline" onSubmit={create} aria-label="Create a key">
          <label>
            Tenant
            <input name="tenant" required list="tenant-list" />
          </label>
          <datalist id="tenant-list">
            {tenants?.data.map((t) => (
              <option key={t.id} value={t.id} />
            ))}
          </datalist>
          <label>
            Tier
            <input name="tier" placeholder="default" />
          </label>
          <label>
            Name
            <input name="name" />
          </label>
          <button type="submit">Create key</button>
        </form>
      )}
      <ErrorText error={error} />
      {keys && (
        <table id="keys">
          <caption>Keys ({keys.data.length})</caption>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Tenant</th>
              <th scope="col">Tier</th>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Last used</th>
              {canWrite && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {keys.data.map((k) => (
              <tr key={k.id}>
                <th scope="row">
                  <code>{k.id}</code>
                </th>
                <td>{k.tenant}</td>
                <td>{k.tier}</td>
                <td>{k.name ?? ''}</td>
                <td>
                  {k.status}
                  {k.rotationGraceEndsAt ? ` (old secret until ${fmtTime(k.rotationGraceEndsAt)})` : ''}
                </td>
                <td>{fmtTime(k.lastUsedAt)}</td>
                {canWrite && (
                  <td>
                    {k.status === 'active' && (
                      <>
                        <button
                          type="button"
                          class="secondary"
                          aria-label={`Rotate key ${k.id}`}
                          onClick={() =>
                            act(() => api(`/admin/v1/keys/${k.id}/rotate`, { method: 'POST', body: { grace: '1h' } }))
                          }
                        >
                          Rotate
                        </button>{' '}
                        <button
                          type="button"
                          class="danger"
                          aria-label={`Revoke key ${k.id}`}
                          onClick={() =>
                            confirm(`Revoke key ${k.id}? It stops working at once.`) &&
                            act(() => api(`/admin/v1/keys/${k.id}/revoke`, { method: 'POST', body: {} }))
                          }
                        >
                          Revoke
                        </button>
                      </>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface Version {
  version: number;
  author: string;
  message: string;
  createdAt: string;
}

function PolicyPage(props: { session: Session }) {
  const isAdmin = props.session.role === 'admin';
  const [running, runErr, reloadRunning] = useLoad(
    () => api<{ version: number; source: string }>('/admin/v1/policy'),
    [],
  );
  const [versions, verErr, reloadVersions] = useLoad(() => api<{ data: Version[] }>('/admin/v1/policy/versions'), []);
  const [draft, setDraft] = useState<string | null>(null);
  const [diff, setDiff] = useState<unknown>(null);
  const [msg, setMsg] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const source = draft ?? running?.source ?? '';
  const run = async (fn: () => Promise<unknown>, done: (r: any) => string) => {
    setError(null);
    setMsg(null);
    try {
      const r = await fn();
      setMsg(done(r));
      reloadRunning();
      reloadVersions();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="pol-h">
      <h2 id="pol-h">Policy</h2>
      <ErrorText error={runErr ?? verErr} />
      <p>
        Running version: <strong id="running-version">{running?.version ?? '—'}</strong>
      </p>
      <label>
        Policy source (YAML)
        <textarea rows={14} value={source} onInput={(e) => setDraft(e.currentTarget.value)} />
      </label>
      <form class="inline" onSubmit={(e) => e.preventDefault()}>
        <button
          type="button"
          class="secondary"
          onClick={async () => {
            setError(null);
            try {
              setDiff(await api('/admin/v1/policy/diff', { method: 'POST', body: { source } }));
            } catch (err) {
              setError(err);
            }
          }}
        >
          Diff against running
        </button>
        {isAdmin && (
          <button
            type="button"
            onClick={() =>
              run(
                () => api('/admin/v1/policy', { method: 'POST', body: { source, message: 'applied from the console' } }),
                (r) => `Applied: version ${r.version}${r.unchanged ? ' (unchanged)' : ''}`,
              )
            }
          >
            Apply
          </button>
        )}
      </form>
      {diff !== null && <pre class="diff">{JSON.stringify(diff, null, 2)}</pre>}
      {isAdmin && (
        <form
          class="inline"
          aria-label="Roll back"
          onSubmit={(e) => {
            e.preventDefault();
            const f = e.currentTarget as HTMLFormElement;
            const v = Number((f.elements.namedItem('version') as HTMLSelectElement).value);
            void run(
              () =>
                api('/admin/v1/policy/rollback', {
                  method: 'POST',
                  body: { version: v || undefined },
                  headers: otpHeaders('rollback-otp'),
                }),
              (r) => `Rolled back: now version ${r.version}`,
            );
          }}
        >
          <label>
            Roll back to version
            <select name="version">
              <option value="">(the previous one)</option>
              {versions?.data.map((x) => (
                <option key={x.version} value={x.version}>
                  {x.version}
                </option>
              ))}
            </select>
          </label>
          <OtpField id="rollback-otp" />
          <button type="submit" class="danger">
            Roll back
          </button>
        </form>
      )}
      <ErrorText error={error} />
      {msg && (
        <p class="ok" role="status">
          {msg}
        </p>
      )}
      <ImpactPanel source={source} />
      <WatchPanel
        isAdmin={isAdmin}
        version={running?.version}
        onRolledBack={(m) => {
          setMsg(m);
          reloadRunning();
          reloadVersions();
        }}
      />
      {versions && (
        <table>
          <caption>Policy versions</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">When</th>
              <th scope="col">By</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {versions.data.map((x) => (
              <tr key={x.version}>
                <th scope="row">{x.version}</th>
                <td>{fmtTime(x.createdAt)}</td>
                <td>{x.author}</td>
                <td>{x.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface Exception {
  id: string;
  tenant: string;
  key: string | null;
  status: string;
  justification: string;
  requested: { limits: { id: string; limit: number }[]; models: string[]; scopes: string[] };
  granted: Exception['requested'] | null;
  duration: number;
  createdAt: string;
  expiresAt: string | null;
}

function durationText(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

function grantText(g: Exception['requested']): string {
  return [
    ...g.limits.map((l) => `${l.id} → ${l.limit}`),
    ...g.models.map((m) => `model ${m}`),
    ...g.scopes.map((s) => `action ${s}`),
  ].join('; ');
}

function ExceptionsPage(props: { session: Session }) {
  const canDecide = props.session.role !== 'auditor';
  const [data, error, reload] = useLoad(() => api<{ data: Exception[] }>('/admin/v1/exceptions'), []);
  const [actionError, setActionError] = useState<unknown>(null);
  const decide = async (id: string, op: 'approve' | 'deny' | 'revoke') => {
    setActionError(null);
    try {
      const secs = (document.getElementById('exc-duration') as HTMLInputElement | null)?.value.trim();
      const body = op === 'approve' && secs ? { duration: Number(secs) } : {};
      await api(`/admin/v1/exceptions/${id}/${op}`, { method: 'POST', body, headers: otpHeaders('exc-otp') });
      reload();
    } catch (err) {
      setActionError(err);
    }
  };
  return (
    <section aria-labelledby="exq-h">
      <h2 id="exq-h">Exception queue</h2>
      {canDecide && (
        <form class="inline" onSubmit={(e) => e.preventDefault()} aria-label="Approval options">
          <label>
            Grant for (seconds; empty: as asked)
            <input id="exc-duration" type="number" min="1" step="1" inputMode="numeric" />
          </label>
          <OtpField id="exc-otp" />
        </form>
      )}
      <ErrorText error={actionError ?? error} />
      {data && (
        <table id="exception-queue">
          <caption>Exception requests (newest first)</caption>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Tenant / key</th>
              <th scope="col">Status</th>
              <th scope="col">Asks for</th>
              <th scope="col">Duration</th>
              <th scope="col">Justification</th>
              <th scope="col">Ends</th>
              {canDecide && <th scope="col">Decide</th>}
            </tr>
          </thead>
          <tbody>
            {data.data.map((x) => (
              <tr key={x.id}>
                <th scope="row">
                  <code>{x.id}</code>
                </th>
                <td>
                  {x.tenant} / {x.key ?? 'all keys'}
                </td>
                <td>{x.status}</td>
                <td>{grantText(x.granted ?? x.requested)}</td>
                <td>{durationText(x.duration)}</td>
                <td>{x.justification}</td>
                <td>{fmtTime(x.expiresAt)}</td>
                {canDecide && (
                  <td>
                    {x.status === 'pending' && (
                      <>
                        <button type="button" aria-label={`Approve ${x.id}`} onClick={() => decide(x.id, 'approve')}>
                          Approve
                        </button>{' '}
                        <button
                          type="button"
                          class="secondary"
                          aria-label={`Deny ${x.id}`}
                          onClick={() => decide(x.id, 'deny')}
                        >
                          Deny
                        </button>
                      </>
                    )}
                    {x.status === 'approved' && (
                      <button
                        type="button"
                        class="danger"
                        aria-label={`Revoke ${x.id}`}
                        onClick={() => decide(x.id, 'revoke')}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface AuditEvent {
  seq: number;
  instance: string;
  at: number;
  keyId: string | null;
  tenantId: string | null;
  action: string;
  decision: string;
  reason: string;
}

function AuditPage() {
  const [filter, setFilter] = useState({ tenant: '', decision: '' });
  const [events, error] = useLoad(() => {
    const q = new URLSearchParams({ limit: '200' });
    if (filter.tenant) q.set('tenant', filter.tenant);
    if (filter.decision) q.set('decision', filter.decision);
    return api<{ data: AuditEvent[] }>(`/admin/v1/audit?${q}`);
  }, [filter]);
  const [verify, verifyErr] = useLoad(() => api<Record<string, unknown>>('/admin/v1/audit/verify'), []);
  const ok = verify ? (verify as { ok?: boolean }).ok : undefined;
  return (
    <section aria-labelledby="aud-h">
      <h2 id="aud-h">Audit</h2>
      <p role="status">
        Chain verification:{' '}
        {verify ? (
          <strong class={ok === false ? 'error' : 'ok'}>{ok === false ? 'FAILED' : 'intact'}</strong>
        ) : (
          '…'
        )}
      </p>
      {verify && ok === false && <pre class="diff">{JSON.stringify(verify, null, 2)}</pre>}
      <ErrorText error={verifyErr} />
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const f = e.currentTarget as HTMLFormElement;
          const v = (n: string) => (f.elements.namedItem(n) as HTMLInputElement).value.trim();
          setFilter({ tenant: v('tenant'), decision: v('decision') });
        }}
      >
        <label>
          Tenant
          <input name="tenant" />
        </label>
        <label>
          Decision
          <select name="decision">
            <option value="">(any)</option>
            {['allowed', 'throttled', 'refused', 'error', 'admin', 'system'].map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Search</button>
      </form>
      <ErrorText error={error} />
      {events && (
        <table>
          <caption>Audit events ({events.data.length})</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Instance / seq</th>
              <th scope="col">Tenant</th>
              <th scope="col">Key</th>
              <th scope="col">Action</th>
              <th scope="col">Decision</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {events.data.map((e) => (
              <tr key={`${e.instance}-${e.seq}`}>
                <td>{fmtTime(e.at)}</td>
                <td>
                  {e.instance} / {e.seq}
                </td>
                <td>{e.tenantId ?? '—'}</td>
                <td>{e.keyId ?? '—'}</td>
                <td>{e.action}</td>
                <td>{e.decision}</td>
                <td>{e.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function AlertsPage() {
  const [alerts, error] = useLoad(
    () => api<{ data: { id: string; type: string; at: number; tenantId: string | null; message: string }[] }>('/admin/v1/alerts'),
    [],
  );
  return (
    <section aria-labelledby="al-h">
      <h2 id="al-h">Alerts</h2>
      <ErrorText error={error} />
      {alerts && alerts.data.length === 0 && <p class="muted">No alerts raised since this instance started.</p>}
      {alerts && alerts.data.length > 0 && (
        <table>
          <caption>Recent alerts</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Type</th>
              <th scope="col">Tenant</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {alerts.data.map((a) => (
              <tr key={a.id}>
                <td>{fmtTime(a.at)}</td>
                <td>{a.type}</td>
                <td>{a.tenantId ?? '—'}</td>
                <td>{a.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface TrafficRow {
  tenant: string;
  requests: number;
  allowed: number;
  throttled: number;
  refused: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  usd: number;
}

/** Live traffic: the server-sent event stream of /admin/v1/traffic/stream, summed over the last minute. */
function TrafficPage() {
  const [rows, setRows] = useState<TrafficRow[]>([]);
  const [state, setState] = useState('connecting…');
  useEffect(() => {
    const window: { at: number; tenants: TrafficRow[] }[] = [];
    const es = new EventSource('/admin/v1/traffic/stream');
    es.onopen = () => setState('live');
    es.onerror = () => setState('reconnecting…');
    es.onmessage = (e) => {
      const ev = JSON.parse(e.data) as { at: number; tenants: TrafficRow[] };
      window.push(ev);
      while (window.length > 60) window.shift();
      const sum = new Map<string, TrafficRow>();
      for (const w of window)
        for (const t of w.tenants) {
          const r = sum.get(t.tenant) ?? { ...t, requests: 0, allowed: 0, throttled: 0, refused: 0, errors: 0, inputTokens: 0, outputTokens: 0, usd: 0 };
          r.requests += t.requests;
          r.allowed += t.allowed;
          r.throttled += t.throttled;
          r.refused += t.refused;
          r.errors += t.errors;
          r.inputTokens += t.inputTokens;
          r.outputTokens += t.outputTokens;
          r.usd += t.usd;
          sum.set(t.tenant, r);
        }
      setRows([...sum.values()].sort((a, b) => b.requests - a.requests));
    };
    return () => es.close();
  }, []);
  return (
    <section aria-labelledby="live-h">
      <h2 id="live-h">Live traffic</h2>
      <p role="status">
        Stream: <strong>{state}</strong>. Figures are the last 60 seconds, per tenant.
      </p>
      <table id="traffic">
        <caption>Traffic per tenant, last 60 seconds</caption>
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col" class="num">Requests</th>
            <th scope="col" class="num">Allowed</th>
            <th scope="col" class="num">429</th>
            <th scope="col" class="num">Refused</th>
            <th scope="col" class="num">Errors</th>
            <th scope="col" class="num">Tokens in / out</th>
            <th scope="col" class="num">Spend (USD)</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.tenant}>
              <th scope="row">{r.tenant}</th>
              <td class="num">{r.requests}</td>
              <td class="num">{r.allowed}</td>
              <td class="num">{r.throttled}</td>
              <td class="num">{r.refused}</td>
              <td class="num">{r.errors}</td>
              <td class="num">
                {r.inputTokens} / {r.outputTokens}
              </td>
              <td class="num">{r.usd.toFixed(6)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && <p class="muted">No requests in the last minute.</p>}
    </section>
  );
}

const TABS: [string, string][] = [
  ['keys', 'Tenants and keys'],
  ['policy', 'Policy'],
  ['exceptions', 'Exceptions'],
  ['cases', 'Cases'],
  ['audit', 'Audit'],
  ['alerts', 'Alerts'],
  ['traffic', 'Live traffic'],
];

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checked, setChecked] = useState(false);
  const route = useHashRoute('keys');
  useEffect(() => {
    api<Session>('/console/session').then(
      (s) => {
        setCsrf(s.csrfToken);
        setSession(s);
        setChecked(true);
      },
      () => setChecked(true),
    );
  }, []);
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
    await api('/console/session', { method: 'DELETE' }).catch(() => {});
    setCsrf(null);
    setSession(null);
  };
  return (
    <>
      <header class="top">
        <h1>Sluice console</h1>
        <span class="who">
          {session.user} ({session.role})
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <Tabs tabs={TABS} current={route} label="Console sections" />
      <main>
        {route === 'keys' && <KeysPage session={session} />}
        {route === 'policy' && <PolicyPage session={session} />}
        {route === 'exceptions' && <ExceptionsPage session={session} />}
        {route === 'cases' && <CasesPage session={session} />}
        {route === 'audit' && <AuditPage />}
        {route === 'alerts' && <AlertsPage />}
        {route === 'traffic' && <TrafficPage />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
