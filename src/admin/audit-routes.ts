/** `/admin/v1/audit`: query, JSON-lines export and verification of the audit trail (any admin role). */
import type { FastifyInstance } from 'fastify';
import { verifyAudit } from '../core/audit/verify-audit.js';
import { refuse } from '../core/errors.js';
import type { AuditKey } from '../stores/data-dir.js';
import type { SqlAuditStore } from '../stores/sql/audit-store.js';
import { type AdminDeps, auditAdmin, guard, sendAdminError } from './app.js';

function time(v: string | undefined): number | undefined | null {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

export function registerAuditRoutes(
  app: FastifyInstance,
  deps: AdminDeps,
  stores: { auditStore: SqlAuditStore; auditKey: AuditKey; audit: { flush(): Promise<void> } },
): void {
  app.get('/admin/v1/audit', { preHandler: guard('read') }, async (request, reply) => {
    const q = request.query as Record<string, string | undefined>;
    const since = time(q.since);
    const until = time(q.until);
    if (since === null || until === null)
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', 'since/until must be ISO dates'));
    const limit = Math.min(Math.max(Number.parseInt(q.limit ?? '100', 10) || 100, 1), 5000);
    let rows = await stores.auditStore.read({
      instance: q.instance,
      since,
      until,
      limit: q.decision || q.key || q.tenant ? 50_000 : limit,
    });
    if (q.decision) rows = rows.filter((e) => e.decision === q.decision);
    if (q.key) rows = rows.filter((e) => e.keyId === q.key);
    if (q.tenant) rows = rows.filter((e) => e.tenantId === q.tenant);
    auditAdmin(deps, request, 'audit.query', { filters: Object.keys(q) });
    return { data: rows.slice(0, limit) };
  });
  app.get('/admin/v1/audit/export', { preHandler: guard('read') }, async (request, reply) => {
    const q = request.query as Record<string, string | undefined>;
    const since = time(q.since);
    const until = time(q.until);
    if (since === null || until === null)
      return sendAdminError(reply, refuse('SLUICE_BAD_REQUEST', 'since/until must be ISO dates'));
    await stores.audit.flush();
    auditAdmin(deps, request, 'audit.export', { since: q.since ?? null, until: q.until ?? null });
    const lines: string[] = [];
    for (const instance of await stores.auditStore.instances()) {
      let afterSeq = 0;
      for (;;) {
        const page = await stores.auditStore.read({ instance, since, until, afterSeq, limit: 5000 });
        for (const e of page) lines.push(JSON.stringify(e));
        if (page.length < 5000 || lines.length > 1_000_000) break;
        afterSeq = page[page.length - 1]!.seq;
      }
    }
    reply.type('application/x-ndjson');
    return lines.length ? `${lines.join('\n')}\n` : '';
  });
  app.get('/admin/v1/audit/verify', { preHandler: guard('read') }, async () => {
    await stores.audit.flush();
    return verifyAudit(stores.auditStore, stores.auditKey.publicKey);
  });
}
