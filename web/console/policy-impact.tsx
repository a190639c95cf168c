/**
 * The Policy page's question before a change (issue 19): **Impact** replays the recorded calls of a
 * period against the edited candidate (`POST /admin/v1/policy/impact`) and shows what would change,
 * never guessing facts the audit trail does not hold. After the change: policy-watch.tsx.
 */
import { useState } from 'preact/hooks';
import { api, fmtNum } from '../shared/api';
import { ErrorText } from '../shared/ui';

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

/** The grouped counts of newly refused calls (and the limits that would bind) in one table. */
function Counts(props: { r: ImpactReport }) {
  const groups: [string, Record<string, number>][] = [
    ['tenant', props.r.byTenant],
    ['action', props.r.byAction],
    ['model', props.r.byModel],
    ['rule (code)', props.r.byCode],
    ['limit that would bind', props.r.limitsBinding],
  ];
  const rows = groups.flatMap(([by, m]) =>
    Object.entries(m)
      .sort((x, y) => y[1] - x[1])
      .map(([k, n]) => [by, k, n] as const),
  );
  if (rows.length === 0) return null;
  return (
    <table id="impact-counts">
      <caption>Newly refused calls by tenant, action, model and rule; limits that would bind</caption>
      <thead>
        <tr>
          <th scope="col">By</th>
          <th scope="col">Name</th>
          <th scope="col" class="num">
            Calls
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([by, k, n]) => (
          <tr key={`${by}-${k}`}>
            <td>{by}</td>
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
      <Counts r={r} />
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
