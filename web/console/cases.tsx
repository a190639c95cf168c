/**
 * The case queue: quarantines, throttles and flags from abuse detection (/admin/v1/cases), with their
 * evidence and notes. Operators release (the API asks for a fresh one-time code: step-up), confirm or
 * annotate a case; auditors read only. Every action is the documented admin API call.
 */
import { useState } from 'preact/hooks';
import { ApiError, api, fmtTime } from '../shared/api';
import { ErrorText, useLoad } from '../shared/ui';
import { OtpField, otpHeaders } from './otp';

interface AbuseCase {
  id: string;
  kind: 'flag' | 'throttle' | 'quarantine';
  status: 'open' | 'confirmed' | 'released' | 'expired';
  detector: string;
  category: string;
  score: number;
  reason: string;
  capability: string;
  subject: { keyId?: string; tenantId?: string; net?: string; ip?: string };
  evidence: {
    signals: Record<string, number | string>;
    sampleRequests: string[];
    related: { keys: string[]; ips: string[]; tenants: string[] };
  };
  createdAt: number;
  expiresAt: number | null;
  shadow: boolean;
  notes: { at: number; by: string; text: string }[];
}

const STATUSES = ['open', 'confirmed', 'released', 'expired'];

function subjectText(s: AbuseCase['subject']): string {
  const parts = [];
  if (s.tenantId) parts.push(`tenant ${s.tenantId}`);
  if (s.keyId) parts.push(`key ${s.keyId}`);
  if (s.net) parts.push(`network ${s.net}`);
  if (s.ip) parts.push(`ip ${s.ip}`);
  return parts.join(', ') || '—';
}

function Evidence(props: { c: AbuseCase }) {
  const e = props.c.evidence;
  const list = (xs: string[]) => (xs.length ? xs.slice(0, 20).join(', ') + (xs.length > 20 ? ` (+${xs.length - 20})` : '') : '—');
  return (
    <details>
      <summary>Evidence</summary>
      <dl class="evidence">
        <dt>Signals</dt>
        <dd>
          {Object.entries(e.signals)
            .map(([k, v]) => `${k}: ${v}`)
            .join('; ') || '—'}
        </dd>
        <dt>Related keys</dt>
        <dd>{list(e.related.keys)}</dd>
        <dt>Related addresses</dt>
        <dd>{list(e.related.ips)}</dd>
        <dt>Related tenants</dt>
        <dd>{list(e.related.tenants)}</dd>
        <dt>Sample requests</dt>
        <dd>{list(e.sampleRequests)}</dd>
        <dt>Notes</dt>
        <dd>
          {props.c.notes.length === 0
            ? '—'
            : props.c.notes.map((n) => (
                <div key={`${n.at}-${n.text}`}>
                  {fmtTime(n.at)} {n.by}: {n.text}
                </div>
              ))}
        </dd>
      </dl>
    </details>
  );
}

export function CasesPage(props: { session: { role: string } }) {
  const canReview = props.session.role !== 'auditor';
  // `live` (the default): what is in force, open or confirmed.
  const [status, setStatus] = useState('live');
  const [cases, error, reload] = useLoad(async () => {
    if (status !== 'live') return api<{ data: AbuseCase[] }>(`/admin/v1/cases${status ? `?status=${status}` : ''}`);
    const all = await api<{ data: AbuseCase[] }>('/admin/v1/cases?limit=1000');
    return { data: all.data.filter((c) => c.status === 'open' || c.status === 'confirmed') };
  }, [status]);
  const [actionError, setActionError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const missing = error instanceof ApiError && error.status === 404;
  const act = async (id: string, op: 'release' | 'confirm' | 'note') => {
    setActionError(null);
    setDone(null);
    const note = (document.getElementById('case-note') as HTMLTextAreaElement | null)?.value.trim() ?? '';
    try {
      if (op === 'note' && !note) throw new Error('Write the note first.');
      const body = op === 'note' ? { text: note } : op === 'release' && note ? { note } : {};
      const headers = op === 'release' ? otpHeaders('case-otp') : {};
      const c = await api<AbuseCase>(`/admin/v1/cases/${id}/${op}`, { method: 'POST', body, headers });
      setDone(`${op === 'note' ? 'Note added to' : op === 'release' ? 'Released' : 'Confirmed'} ${c.id} (now ${c.status})`);
      reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const stepUp = actionError instanceof ApiError && actionError.code === 'SLUICE_STEP_UP_REQUIRED';
  return (
    <section aria-labelledby="cases-h">
      <h2 id="cases-h">Cases (quarantines and flags)</h2>
      {missing && <p class="muted">Abuse detection is not available on this gateway (no /admin/v1/cases).</p>}
      {!missing && <ErrorText error={error} />}
      <form class="inline" onSubmit={(e) => e.preventDefault()} aria-label="Case filter">
        <label>
          Status
          <select name="caseStatus" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="live">open or confirmed</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
            <option value="">(any)</option>
          </select>
        </label>
      </form>
      {canReview && (
        <form class="inline" onSubmit={(e) => e.preventDefault()} aria-label="Review options">
          <label>
            Note (kept with a release, or added on its own)
            <textarea id="case-note" name="note" maxLength={2000} />
          </label>
          <OtpField id="case-otp" label="One-time code (TOTP, needed to release)" />
        </form>
      )}
      {stepUp && (
        <p class="error" role="alert">
          Releasing a case needs step-up: enter a fresh one-time code from your authenticator and try again.
        </p>
      )}
      <ErrorText error={actionError} />
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
      {cases && cases.data.length === 0 && <p class="muted">No cases{status === 'live' ? ' in force' : status ? ` ${status}` : ''}.</p>}
      {cases && cases.data.length > 0 && (
        <table id="cases">
          <caption>Cases (newest first)</caption>
          <thead>
            <tr>
              <th scope="col">Case</th>
              <th scope="col">Kind</th>
              <th scope="col">Status</th>
              <th scope="col">Capability</th>
              <th scope="col">Subject</th>
              <th scope="col">Why</th>
              <th scope="col">Opened / ends</th>
              <th scope="col">Evidence</th>
              {canReview && <th scope="col">Review</th>}
            </tr>
          </thead>
          <tbody>
            {cases.data.map((c) => {
              const live = c.status === 'open' || c.status === 'confirmed';
              return (
                <tr key={c.id}>
                  <th scope="row">
                    <code>{c.id}</code>
                  </th>
                  <td>
                    {c.kind}
                    {c.shadow ? ' (shadow)' : ''}
                  </td>
                  <td>{c.status}</td>
                  <td>{c.capability}</td>
                  <td>{subjectText(c.subject)}</td>
                  <td>
                    {c.reason} <span class="muted">({c.detector}, score {c.score.toFixed(2)})</span>
                  </td>
                  <td>
                    {fmtTime(c.createdAt)} / {c.expiresAt === null ? 'until reviewed' : fmtTime(c.expiresAt)}
                  </td>
                  <td class="evidence">
                    <Evidence c={c} />
                  </td>
                  {canReview && (
                    <td class="actions">
                      {live && (
                        <button type="button" class="danger" aria-label={`Release ${c.id}`} onClick={() => act(c.id, 'release')}>
                          Release
                        </button>
                      )}{' '}
                      {c.status === 'open' && (
                        <button type="button" aria-label={`Confirm ${c.id}`} onClick={() => act(c.id, 'confirm')}>
                          Confirm
                        </button>
                      )}{' '}
                      <button type="button" class="secondary" aria-label={`Add note to ${c.id}`} onClick={() => act(c.id, 'note')}>
                        Add note
                      </button>
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
