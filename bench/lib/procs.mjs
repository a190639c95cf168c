// Child processes for the benchmark: spawn pinned to a core (taskset, when present), wait until
// they print their URL, read their CPU time and resident memory from /proc, and kill every one of
// them at the end, on error and on Ctrl-C alike.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const HAS_TASKSET = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const children = new Set();

/** Pin this process (all its threads) to one core; the load generator then runs there. */
export function pinSelf(core) {
  if (!HAS_TASKSET) return false;
  return (
    spawnSync('taskset', ['-a', '-pc', String(core), String(process.pid)], { stdio: 'ignore' }).status === 0
  );
}

/** A free loopback port (bound then released: a tiny race, acceptable on a bench machine). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start `cmd args` (pinned to `core` when taskset exists) and resolve once a line of its output
 * matches `ready` (a RegExp; its first group, if any, is returned as `match`). Rejects, and kills
 * the child, if it exits or `timeoutMs` passes first. The pid is the target's own (taskset execs).
 */
export function startProcess({
  name,
  cmd = process.execPath,
  args,
  env,
  cwd,
  core,
  ready,
  timeoutMs = 30_000,
}) {
  const argv =
    HAS_TASKSET && core !== undefined ? ['taskset', '-c', String(core), cmd, ...args] : [cmd, ...args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const log = [];
  const proc = { name, child, pid: child.pid, log, match: undefined };
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => fail(new Error(`${name}: not ready after ${timeoutMs} ms`)), timeoutMs);
    function fail(err) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      kill(proc);
      err.message += `\n--- ${name} output ---\n${log.join('').slice(-3000)}`;
      reject(err);
    }
    function onData(buf) {
      const text = buf.toString('utf8');
      log.push(text);
      if (log.length > 200) log.splice(0, log.length - 200);
      if (done) return;
      // Strip ANSI colour codes: some targets colour their banner.
      const m = ready.exec(log.join('').replace(/\x1b\[[0-9;]*m/g, ''));
      if (m) {
        done = true;
        clearTimeout(timer);
        proc.match = m[1] ?? m[0];
        resolve(proc);
      }
    }
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', fail);
    child.on('exit', (code, sig) => fail(new Error(`${name}: exited early (code ${code}, signal ${sig})`)));
  });
}

/** Run a command to completion (bounded), returning stdout; throws with its output on failure. */
export function runCommand(cmd, args, { env, cwd, timeoutMs = 60_000 } = {}) {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...env },
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** Stop one process: SIGTERM, then SIGKILL after `graceMs`. */
export function kill(proc, graceMs = 2000) {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {}
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      child.kill('SIGTERM');
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}

/** Stop every child this module started. */
export async function killAll() {
  await Promise.all([...children].map((child) => kill({ child })));
}

function killAllNow() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllNow();
    process.exit(130);
  });
}

/** utime + stime of a process, in microseconds. */
export function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / CLK_TCK;
}

/** Resident set size of a process, in KiB (VmRSS). */
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
