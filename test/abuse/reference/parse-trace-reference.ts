/**
 * Verbatim copy of `parseTrace` (src/abuse/simulator.ts) before its per-line closures were hoisted
 * (issue 11: simulate speed). test/abuse/parse-trace-reference.test.ts checks the new one against it.
 */
import { type Trace, TraceError, type TraceKey, type TraceRequest } from '../../../src/abuse/simulator.js';

const IP = /^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:.]+$/;

/** Parses and validates a JSONL trace (SIMULATION.md). Throws TraceError naming the line and field. */
export function parseTraceReference(text: string): Trace {
  const keys: TraceKey[] = [];
  const requests: TraceRequest[] = [];
  const names = new Set<string>();
  let lastT = Number.NEGATIVE_INFINITY;
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const raw = text.slice(start, end).trim();
    start = end + 1;
    if (raw.length === 0) {
      if (end >= text.length) break;
      continue;
    }
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(raw);
    } catch {
      throw new TraceError(`line ${lineNo}: not valid JSON`);
    }
    if (!o || typeof o !== 'object' || Array.isArray(o))
      throw new TraceError(`line ${lineNo}: not a JSON object`);
    const bad = (field: string, why: string) => new TraceError(`line ${lineNo}: field "${field}" ${why}`);
    const str = (field: string, required: boolean): string | undefined => {
      const v = o[field];
      if (v === undefined && !required) return undefined;
      if (typeof v !== 'string' || v.length === 0) throw bad(field, 'must be a non-empty string');
      return v;
    };
    if (o.type === 'key') {
      const name = str('name', true)!;
      if (names.has(name)) throw bad('name', `declares key "${name}" twice`);
      names.add(name);
      const list = (field: string) => {
        const v = o[field];
        if (v === undefined) return undefined;
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
          throw bad(field, 'must be a list of strings');
        return v as string[];
      };
      const expires = o.expires;
      if (expires !== undefined && typeof expires !== 'string' && typeof expires !== 'number')
        throw bad('expires', 'must be a duration or a timestamp');
      keys.push({
        line: lineNo,
        name,
        tenant: str('tenant', true)!,
        tier: str('tier', true)!,
        project: str('project', false),
        expires: expires as string | number | undefined,
        scopes: list('scopes'),
        models: list('models'),
      });
    } else if (o.type === 'request') {
      const t = o.t;
      if (typeof t !== 'number' || !Number.isFinite(t) || t < 0)
        throw bad('t', 'must be a number of seconds >= 0');
      if (t < lastT) throw bad('t', `goes back in time (${t} after ${lastT})`);
      lastT = t;
      const key = str('key', false);
      const authorization = o.authorization;
      if (authorization !== undefined && typeof authorization !== 'string')
        throw bad('authorization', 'must be a string');
      if (key === undefined && authorization === undefined)
        throw bad('key', 'or "authorization" is required');
      const ip = str('ip', true)!;
      if (!IP.test(ip)) throw bad('ip', 'must be an IPv4 or IPv6 address');
      const path = str('path', true)!;
      if (!path.startsWith('/')) throw bad('path', 'must start with /');
      const method =
        str('method', false)?.toUpperCase() ??
        (path === '/v1/models' || path === '/sluice/v1/me' ? 'GET' : 'POST');
      const headers: Record<string, string> = {};
      if (o.headers !== undefined) {
        if (!o.headers || typeof o.headers !== 'object' || Array.isArray(o.headers))
          throw bad('headers', 'must be an object of strings');
        for (const [k, v] of Object.entries(o.headers as Record<string, unknown>)) {
          if (typeof v !== 'string') throw bad(`headers.${k}`, 'must be a string');
          headers[k.toLowerCase()] = v;
        }
      }
      let latencyMs = 0;
      let outputTokens: number | undefined;
      let status: number | undefined;
      if (o.upstream !== undefined) {
        const u = o.upstream as Record<string, unknown>;
        if (!u || typeof u !== 'object' || Array.isArray(u)) throw bad('upstream', 'must be an object');
        if (u.latencyMs !== undefined) {
          if (typeof u.latencyMs !== 'number' || !(u.latencyMs >= 0))
            throw bad('upstream.latencyMs', 'must be a number >= 0');
          latencyMs = u.latencyMs;
        }
        if (u.outputTokens !== undefined) {
          if (!Number.isInteger(u.outputTokens) || (u.outputTokens as number) < 0)
            throw bad('upstream.outputTokens', 'must be an integer >= 0');
          outputTokens = u.outputTokens as number;
        }
        if (u.status !== undefined) {
          if (!Number.isInteger(u.status) || (u.status as number) < 100 || (u.status as number) > 599)
            throw bad('upstream.status', 'must be an HTTP status');
          status = u.status as number;
        }
      }
      const req: TraceRequest = {
        line: lineNo,
        t,
        key,
        authorization: authorization as string | undefined,
        ip,
        method,
        path,
        headers,
        body: o.body,
        latencyMs,
        outputTokens,
        status,
      };
      // (a superset of the lines with a -0 in the body: "2024-01-05" in a prompt counts too)
      if (o.body !== undefined && raw.includes('-0')) req.reparse = true;
      requests.push(req);
    } else {
      throw bad('type', `must be "key" or "request" (got ${JSON.stringify(o.type)?.slice(0, 40)})`);
    }
  }
  for (const r of requests)
    if (r.key !== undefined && !names.has(r.key))
      throw new TraceError(`line ${r.line}: field "key" names undeclared key "${r.key.slice(0, 64)}"`);
  return { keys, requests };
}
