/**
 * The Policy page's question after a change (issue 19): **Since last apply** compares error rate,
 * 429 rate, added latency and throughput before and after the last apply
 * (`GET /admin/v1/policy/watch`), flags a regression and offers the one-command rollback it names.
 */
import { useState } from 'preact/hooks';
import { ApiError, api, fmtNum, fmtTime } from '../shared/api';
import { ErrorText, useLoad } from '../shared/ui';
import { OtpField, otpHeaders } from './otp';

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
    ['Period', (f) => (f.minutes < 1 ? `${fmtNum(f.minutes * 60, 1)} s` : `${fmtNum(f.minutes, 1)} min`)],
    ['Requests', (f) => fmtNum(f.requests)],
    ['Error rate', (f) => pct(f.errorRate)],
    ['429 rate', (f) => pct(f.limitedRate)],
    ['Added latency', (f) => ms(f.addedLatencyMs)],
    ['Throughput', (f) => `${fmtNum(f.throughput, 1)}/min`],
  ];
  return (
    <section aria-labelledby="watch-h" id="policy-watch">
      <h3 id="watch-h">Since last apply</h3>
      <form class="inline" aria-label="Watch period" onSubmit={(e) => e.preventDefault()}>
        <label>
          Compare minutes before and after
          <select value={minutes} onChange={(e) => setMinutes(e.currentTarget.value)}>
            {['10', '30', '60', '1440'].map((m) => (
              <option key={m} value={m}>
                {m} minutes
              </option>
            ))}
          </select>
        </label>
      </form>
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
              <OtpField id="watch-otp" label="One-time code for this rollback (TOTP)" />
              <button type="submit" class="danger">
                Restore version {w.previous}
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
