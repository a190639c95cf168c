/**
 * IP reputation lists from files: one CIDR or address per line, `#` starts a comment, blank lines
 * ignored. Each list is compiled into a CidrMatcher; `listed` is a hash or linear lookup, no I/O.
 *
 * Files are watched (their directory, so atomic replace-by-rename is seen too) and reloaded shortly
 * after they change. A reload that fails (file missing, unreadable) keeps the last good list and
 * records the error; invalid lines are skipped and counted, never fatal.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { type CidrMatcher, compileCidrs, type ParsedIp, parseCidr, parseIp } from '../core/authz/cidr.js';
import type { ReputationLookup } from '../core/authz/policy.js';

/** Result of parsing one list file's text. */
export interface ParsedList {
  matcher: CidrMatcher;
  entries: number;
  /** Offending lines (first 20), as `line N: text`. */
  invalid: string[];
  invalidCount: number;
}

export function parseReputationList(text: string): ParsedList {
  const good: string[] = [];
  const invalid: string[] = [];
  let invalidCount = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i]!.indexOf('#');
    const line = (hash === -1 ? lines[i]! : lines[i]!.slice(0, hash)).trim();
    if (line === '') continue;
    if (parseCidr(line)) good.push(line);
    else {
      invalidCount++;
      if (invalid.length < 20) invalid.push(`line ${i + 1}: ${line.slice(0, 80)}`);
    }
  }
  return { matcher: compileCidrs(good), entries: good.length, invalid, invalidCount };
}

export interface ReputationListStatus {
  name: string;
  file: string;
  entries: number;
  invalidLines: number;
  /** Reloads that succeeded (the first load counts). */
  loads: number;
  /** The last reload error, if the current list is older than the file. */
  error: string | null;
}

export interface ReputationOptions {
  /** Relative list paths are resolved against this (the config file's directory); default cwd. */
  baseDir?: string;
  /** Watch the files and reload on change; default true. */
  watch?: boolean;
  /** Quiet period after a change event before reloading (editors write in several steps); default 100 ms. */
  debounceMs?: number;
  /** Called after each reload attempt of a list (also on failure, with `error` set). */
  onReload?: (status: ReputationListStatus) => void;
}

interface ListState {
  name: string;
  file: string;
  matcher: CidrMatcher;
  entries: number;
  invalidLines: number;
  loads: number;
  error: string | null;
  timer: NodeJS.Timeout | null;
}

/**
 * Named reputation lists. `load` throws if a list cannot be read at startup (config check should fail
 * loudly); afterwards nothing throws. Call `close` to stop watching.
 */
export class ReputationLists implements ReputationLookup {
  private readonly lists = new Map<string, ListState>();
  private readonly watchers: FSWatcher[] = [];

  private constructor(private readonly opts: ReputationOptions) {}

  static async load(
    config: Record<string, { file: string }>,
    opts: ReputationOptions = {},
  ): Promise<ReputationLists> {
    const r = new ReputationLists(opts);
    const base = opts.baseDir ?? process.cwd();
    for (const [name, { file }] of Object.entries(config)) {
      const path = resolve(base, file);
      const parsed = parseReputationList(await readFile(path, 'utf8'));
      r.lists.set(name, {
        name,
        file: path,
        matcher: parsed.matcher,
        entries: parsed.entries,
        invalidLines: parsed.invalidCount,
        loads: 1,
        error: null,
        timer: null,
      });
    }
    if (opts.watch !== false) r.startWatching();
    return r;
  }

  /** True when `ip` is on list `name`. Unknown list names and unparseable addresses are not listed. */
  listed(name: string, ip: string | ParsedIp): boolean {
    const l = this.lists.get(name);
    if (l === undefined) return false;
    if (typeof ip === 'string') {
      const p = parseIp(ip);
      return p !== null && l.matcher.hasParsed(p);
    }
    return l.matcher.hasParsed(ip);
  }

  /** Re-reads one list (or all) now; keeps the last good list on failure. */
  async reload(name?: string): Promise<void> {
    const targets =
      name === undefined ? [...this.lists.values()] : [this.lists.get(name)].filter((l) => l !== undefined);
    await Promise.all(targets.map((l) => this.reloadOne(l)));
  }

  status(): ReputationListStatus[] {
    return [...this.lists.values()].map((l) => this.statusOf(l));
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    for (const l of this.lists.values()) if (l.timer) clearTimeout(l.timer);
  }

  private statusOf(l: ListState): ReputationListStatus {
    return {
      name: l.name,
      file: l.file,
      entries: l.entries,
      invalidLines: l.invalidLines,
      loads: l.loads,
      error: l.error,
    };
  }

  private async reloadOne(l: ListState): Promise<void> {
    try {
      const parsed = parseReputationList(await readFile(l.file, 'utf8'));
      l.matcher = parsed.matcher;
      l.entries = parsed.entries;
      l.invalidLines = parsed.invalidCount;
      l.loads++;
      l.error = null;
    } catch (e) {
      l.error = e instanceof Error ? e.message : String(e);
    }
    this.opts.onReload?.(this.statusOf(l));
  }

  private startWatching(): void {
    const byDir = new Map<string, ListState[]>();
    for (const l of this.lists.values()) {
      const d = dirname(l.file);
      byDir.set(d, [...(byDir.get(d) ?? []), l]);
    }
    const debounce = this.opts.debounceMs ?? 100;
    for (const [dir, lists] of byDir) {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        for (const l of lists) {
          if (filename !== null && filename !== basename(l.file)) continue;
          if (l.timer) clearTimeout(l.timer);
          l.timer = setTimeout(() => {
            l.timer = null;
            void this.reloadOne(l);
          }, debounce);
          l.timer.unref();
        }
      });
      w.on('error', () => {
        // The directory went away; `reload()` still works and the last good lists stay in force.
      });
      this.watchers.push(w);
    }
  }
}
