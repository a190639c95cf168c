/**
 * A raw HTTP/1.1 client for fuzzing: sends arbitrary bytes (any method, target, header or body,
 * well-formed or not) on a fresh connection and reads back one response, however it is framed
 * (content-length, chunked, or until close). Nothing is validated on the way out.
 */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export type RawResult =
  | { kind: 'response'; res: RawResponse }
  /** The server closed the connection without a byte of response. */
  | { kind: 'closed' }
  /** Bytes came back that are not an HTTP response. */
  | { kind: 'garbage'; raw: string }
  | { kind: 'timeout'; raw: string };

function parseHead(head: string): { status: number; headers: Record<string, string> } | undefined {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i <= 0) return undefined;
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers };
}

/** Decodes a chunked body; undefined while incomplete. */
function dechunk(buf: Buffer): Buffer | undefined {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) return undefined;
    const size = Number.parseInt(buf.subarray(i, eol).toString('latin1').split(';')[0]!, 16);
    if (Number.isNaN(size)) return undefined;
    if (size === 0)
      return buf.indexOf('\r\n\r\n', eol) >= 0 || buf.length >= eol + 4 ? Buffer.concat(out) : undefined;
    if (buf.length < eol + 2 + size + 2) return undefined;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
}

/**
 * Sends `request` to host:port and resolves with the first response. `headRequest` says the
 * request was HEAD (its response has no body).
 */
export function rawRequest(
  port: number,
  request: Buffer | string,
  opts: { timeoutMs?: number; headRequest?: boolean; localAddress?: string } = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress: opts.localAddress });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r: RawResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const tryParse = (closed: boolean) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (closed)
          finish(buf.length === 0 ? { kind: 'closed' } : { kind: 'garbage', raw: buf.toString('latin1') });
        return;
      }
      const head = parseHead(buf.subarray(0, end).toString('latin1'));
      if (!head) return finish({ kind: 'garbage', raw: buf.toString('latin1') });
      const rest = buf.subarray(end + 4);
      const res = (body: Buffer) => finish({ kind: 'response', res: { ...head, body } });
      if (opts.headRequest || head.status === 204 || head.status === 304 || head.status < 200)
        return res(Buffer.alloc(0));
      if (head.headers['transfer-encoding']?.toLowerCase() === 'chunked') {
        const body = dechunk(rest);
        if (body) return res(body);
        if (closed) finish({ kind: 'garbage', raw: buf.toString('latin1') });
        return;
      }
      const cl = head.headers['content-length'];
      if (cl !== undefined) {
        const n = Number(cl);
        if (rest.length >= n) return res(rest.subarray(0, n));
        if (closed) finish({ kind: 'garbage', raw: buf.toString('latin1') });
        return;
      }
      if (closed) res(rest);
    };
    const timer = setTimeout(
      () => finish({ kind: 'timeout', raw: buf.toString('latin1') }),
      opts.timeoutMs ?? 10_000,
    );
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      tryParse(false);
    });
    sock.on('error', () => tryParse(true));
    sock.on('close', () => tryParse(true));
    sock.on('connect', () => sock.write(request));
  });
}
