/**
 * Shared pieces of the fault and fuzz suites: a scriptable upstream stub on loopback (hangs,
 * resets, breaks mid-stream, garbage SSE), readers of what a Sluice data dir recorded (usage rows,
 * audit events), and small polling helpers. Real sockets and processes only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Agent } from 'undici';

/** What the stub does with one request whose body carries `x_script: <id>`. */
export interface StubScript {
  status?: number;
  headers?: Record<string, string>;
  /** Body pieces written in order, `delayMs` apart. */
  chunks: (string | Uint8Array)[];
  delayMs?: number;
  /** After the chunks: end cleanly, reset the connection, or stall (until the client gives up). */
  end: 'end' | 'reset' | 'stall';
}

export interface FaultStub {
  /** Base URL with `/v1`, for an `openai` upstream; the bare origin for `anthropic`. */
  url: string;
  origin: string;
  scripts: Map<string, StubScript>;
  /** Requests received, by path. */
  received: { path: string; model: string | undefined }[];
  close(): Promise<void>;
}

const chunk = (model: string, text: string) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;

/**
 * Behaviour by model name prefix: `hang-` never answers; `reset-` drops the connection; `break-`
 * streams 5 chunks then resets; `stall-` streams 3 chunks then goes silent; `script-` follows
 * `scripts.get(body.x_script)`; anything else answers normally (JSON or a stream with usage).
 */
export async function startFaultStub(): Promise<FaultStub> {
  const sockets = new Set<Socket>();
  const state: FaultStub = {
    url: '',
    origin: '',
    scripts: new Map(),
    received: [],
    close: async () => {},
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', async () => {
      let body: { model?: string; stream?: boolean; x_script?: string } = {};
      try {
        body = JSON.parse(raw);
      } catch {}
      const model = body.model ?? '';
      state.received.push({ path: req.url ?? '', model });
      if (model.startsWith('hang-')) return;
      if (model.startsWith('reset-')) {
        req.socket.destroy();
        return;
      }
      if (model.startsWith('script-')) {
        const s = state.scripts.get(String(body.x_script));
        if (!s) {
          res.writeHead(500).end();
          return;
        }
        res.writeHead(s.status ?? 200, s.headers ?? { 'content-type': 'text/event-stream' });
        res.flushHeaders();
        for (const c of s.chunks) {
          if (res.destroyed) return;
          res.write(c);
          if (s.delayMs) await sleep(s.delayMs);
        }
        if (s.end === 'end') res.end();
        else if (s.end === 'reset') req.socket.destroy();
        return;
      }
      if (model.startsWith('break-') || model.startsWith('stall-')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const n = model.startsWith('break-') ? 5 : 3;
        for (let i = 0; i < n; i++) {
          res.write(chunk(model, 'hello world '));
          await sleep(10);
        }
        if (model.startsWith('break-')) req.socket.destroy();
        return;
      }
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'x',
            object: 'chat.completion',
            created: 1,
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < 3; i++) res.write(chunk(model, 'w '));
      res.write(
        `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model, choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`,
      );
      res.end('data: [DONE]\n\n');
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.url = `${state.origin}/v1`;
  state.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return state;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export { paceLoad } from '../helpers/wait.js';

/** Polls `cond` every 50 ms until it is true or `timeoutMs` passed; returns the last result. */
export async function waitFor<T>(cond: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v || Date.now() > until) return v;
    await sleep(50);
  }
}

export interface UsageRow {
  request_id: string;
  key_id: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  status: number;
}

export interface AuditRow {
  instance: string;
  seq: number;
  request_id: string | null;
  action: string;
  decision: string;
  reason: string;
  client_ip: string | null;
  key_id: string | null;
  details: string | null;
}

/** Reads what a data dir recorded (a read-only connection; safe while the process runs: WAL). */
export function readRecords(dataDir: string): { usage: UsageRow[]; audit: AuditRow[] } {
  const db = new Database(join(dataDir, 'sluice.db'), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const usage = db.prepare('select * from usage').all() as UsageRow[];
    const audit = db.prepare('select * from audit_events order by instance, seq').all() as AuditRow[];
    return { usage, audit };
  } finally {
    db.close();
  }
}

/** Groups rows by request id: how many rows each request produced. */
export function countBy<T extends { request_id: string | null }>(rows: T[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) if (r.request_id) m.set(r.request_id, (m.get(r.request_id) ?? 0) + 1);
  return m;
}

/** An undici dispatcher whose connections leave from `localAddress` (127.0.0.x: another client IP). */
export function agentFrom(localAddress: string, connections = 8): Agent {
  return new Agent({ localAddress, connections, keepAliveTimeout: 10_000 });
}

/** Parses an SSE body into its events' data fields (comments and empty blocks dropped). */
export function sseData(text: string): string[] {
  const out: string[] = [];
  for (const block of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    const data = block
      .split(/\r\n|\n|\r/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length) out.push(data.join('\n'));
  }
  return out;
}

/**
 * True when `body` is an error in the caller's wire format. Sluice's own Anthropic errors end their
 * message with `(SLUICE_CODE)`; `anthropicCode: false` accepts any Anthropic-shaped error.
 */
export function isWireError(
  format: 'openai' | 'anthropic',
  body: unknown,
  opts: { anthropicCode?: boolean } = {},
): boolean {
  const b = body as Record<string, any> | null;
  if (!b || typeof b !== 'object') return false;
  if (format === 'anthropic') {
    return (
      b.type === 'error' &&
      typeof b.error?.type === 'string' &&
      typeof b.error?.message === 'string' &&
      (opts.anthropicCode === false || /\(SLUICE_[A-Z0-9_]+\)$/.test(b.error.message))
    );
  }
  const e = b.error;
  return (
    !!e &&
    typeof e.message === 'string' &&
    typeof e.type === 'string' &&
    typeof e.code === 'string' &&
    e.code.startsWith('SLUICE_') &&
    (e.param === null || typeof e.param === 'string') &&
    Object.keys(e).sort().join() === 'code,message,param,type'
  );
}

/**
 * A private PostgreSQL server for fault tests: initdb'd in a temp dir the `postgres` user owns,
 * on its own port, started and stopped with pg_ctl as that user. `kill()` SIGKILLs the postmaster
 * and its backends (by pid: only this server's processes), as a crash or a failover would.
 */
export interface PrivatePostgres {
  port: number;
  url(db?: string): string;
  start(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function privatePostgres(port: number): Promise<PrivatePostgres> {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, chownSync, readFileSync, readdirSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const bin = join('/usr/lib/postgresql', readdirSync('/usr/lib/postgresql').sort().pop()!, 'bin');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const asPostgres = (cmd: string) => execFileSync('su', ['postgres', '-c', cmd], { stdio: 'pipe' });
  asPostgres(`${bin}/initdb -D ${data} -A trust -U postgres --no-sync >/dev/null`);
  const pidOf = () => {
    try {
      return Number.parseInt(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]!, 10);
    } catch {
      return 0;
    }
  };
  const childrenOf = (pid: number): number[] => {
    try {
      return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)])
        .toString()
        .split('\n')
        .map((s) => Number.parseInt(s.trim(), 10))
        .filter((n) => n > 0);
    } catch {
      return [];
    }
  };
  /** The process state letter from /proc (T when stopped), or '' when it is gone. */
  const stateOf = (pid: number): string => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return '';
    }
  };
  const gone = (pid: number) => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  const pg: PrivatePostgres = {
    port,
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    async start() {
      try {
        asPostgres(
          `${bin}/pg_ctl -D ${data} -l ${dir}/log -w -o "-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null`,
        );
      } catch (err) {
        // The server's own reason is in its log, not in pg_ctl's message.
        let log = '';
        try {
          log = readFileSync(join(dir, 'log'), 'utf8').split('\n').slice(-15).join('\n');
        } catch {}
        throw new Error(`${(err as Error).message}\n--- server log ---\n${log}`);
      }
    },
    async kill() {
      const pid = pidOf();
      if (!pid) return;
      // Stopped before its children are listed: a postmaster under load forks a backend for every
      // new connection, and one forked between the listing and the kill would outlive it, keep the
      // shared memory, and make the next start fail ("pre-existing shared memory block ... in use").
      try {
        process.kill(pid, 'SIGSTOP');
      } catch {}
      await waitFor(() => ['T', 't', 'Z', ''].includes(stateOf(pid)), 5_000);
      const all = [pid, ...childrenOf(pid)];
      for (const p of all) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {}
      }
      await waitFor(() => all.every(gone), 10_000);
    },
    async stop() {
      try {
        asPostgres(`${bin}/pg_ctl -D ${data} -m immediate stop >/dev/null`);
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return pg;
}
