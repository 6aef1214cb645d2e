/**
 * Local policy source: a directory of CiliumNetworkPolicy / CCNP / NetworkPolicy YAML files.
 *
 *   file added/changed ─► loadPolicyText ─► valid?  yes ─► replace that file's policies ─► onChange
 *                                                    no  ─► keep its last good policies, record problems
 *   file removed       ─► drop its policies ─► onChange
 *
 * A file is the unit of change: one bad document rejects the whole file, and the policies it
 * had before stay in force, so a typo never opens (or closes) traffic by accident. The last good
 * text of each file is kept in the state directory (`LastGoodTexts`): a file that is invalid when
 * the agent starts is enforced as it last was, not dropped — a restart after a rejected edit must
 * not open what the running agent kept closed.
 */
import { readFileSync, readdirSync, statSync, mkdirSync, existsSync, watch, type FSWatcher } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { loadPolicyText, formatProblem, formatWarning, sameObject, definedElsewhereProblem, type PolicyObject, type PolicyProblem } from '../policy/index.js';

const POLICY_FILE = /\.(ya?ml|json)$/;
/** Bigger than any sane policy file; bounds what a stray file in the directory can cost us. */
const MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024;
/** A file is read once it had no watcher event for this long, ms (as chokidar's awaitWriteFinish stabilityThreshold was). */
const SETTLE_MS = 80;
/** The #settling key of a whole-directory re-read (not a file name: it has no extension). */
const RESCAN = '\0rescan';

export interface FileState {
  readonly policies: readonly PolicyObject[];
  readonly problems: readonly PolicyProblem[];
  /** Of the policies in force: what Membrane enforces fail-closed (unparsed L7 protocols, mutual auth). */
  readonly warnings: readonly PolicyProblem[];
}

/** Where each file's last accepted text survives restarts (the agent: its state directory). */
export interface LastGoodTexts {
  /** The saved texts by file path; throws if they cannot be read. */
  read(): Record<string, string>;
  /** Saves `texts` (may be asynchronous; failures are the saver's to report). */
  save(texts: Record<string, string>): void;
}

export class PolicyDirectory {
  readonly dir: string;
  #files = new Map<string, FileState>();
  #watcher: FSWatcher | null = null;
  #onChange: () => void;
  readonly #work: <T>(fn: () => T) => T;
  #log: Logger;
  #revision = 0;
  /** sha256 of the text each file was last judged on: a re-read of the same text is no change. */
  #digests = new Map<string, string>();
  /** Files with events in the last SETTLE_MS, and the timer that reads (or drops) them. */
  #settling = new Map<string, NodeJS.Timeout>();
  /** The text each file was last accepted with (this run or, restored, an earlier one). */
  readonly #lastGood = new Map<string, string>();
  readonly #lastGoodStore: LastGoodTexts | null;
  /** Files rejected only because a policy in them is also defined by another file (judged again when that may have changed). */
  readonly #clashed = new Set<string>();
  /** Inside `#deferClashes`: re-judging clashed files waits for its end (`#rejudge`: it is due). */
  #deferring = false;
  #rejudge = false;

  /**
   * `options.work` runs each read of the watched files (YAML parsing is most of a policy change's
   * cost): the agent runs it at the control plane's CPU priority (priority.ts).
   */
  constructor(dir: string, log: Logger, onChange: () => void, options: { work?: <T>(fn: () => T) => T; lastGood?: LastGoodTexts } = {}) {
    this.dir = resolve(dir);
    this.#log = log;
    this.#onChange = onChange;
    this.#work = options.work ?? ((fn) => fn());
    this.#lastGoodStore = options.lastGood ?? null;
    mkdirSync(this.dir, { recursive: true });
    if (this.#lastGoodStore) {
      try {
        for (const [path, text] of Object.entries(this.#lastGoodStore.read())) if (typeof text === 'string') this.#lastGood.set(path, text);
      } catch (err) {
        this.#log.error({ err }, 'cannot read the last good policy texts: a policy file invalid now is not enforced until it is fixed');
      }
    }
  }

  get revision(): number {
    return this.#revision;
  }

  /** Reads every file once, synchronously, so the first regeneration sees the full set. */
  loadAll(): void {
    const paths = readdirSync(this.dir).sort().filter((n) => POLICY_FILE.test(n)).map((n) => join(this.dir, n));
    const present = new Set(paths);
    // Files whose text is what was last accepted (in force when the agent stopped) are judged
    // first: of two files defining the same policy, the one in force stays so, whatever the names.
    const unchanged = (path: string): boolean => {
      try {
        return this.#lastGood.get(path) === readFileSync(path, 'utf8');
      } catch {
        return false;
      }
    };
    const first = paths.filter(unchanged);
    this.#deferClashes(() => {
      for (const path of first) this.#load(path, false);
      for (const path of paths) if (!first.includes(path)) this.#load(path, false);
    });
    // Files removed while the agent was down have no last good version any more.
    let pruned = false;
    for (const path of [...this.#lastGood.keys()]) if (!present.has(path)) pruned = this.#lastGood.delete(path) || pruned;
    if (pruned) this.#saveLastGood();
  }

  /**
   * Watches the directory (inotify through fs.watch): a file is read once no event came for it
   * during SETTLE_MS (editors and `cp` write in several steps), then loaded if it exists or its
   * policies dropped if not. An event that names no policy file (a mounted ConfigMap swapping its
   * `..data` link, a lost name) re-reads the whole directory, settled the same way. One event
   * costs O(1): chokidar re-listed and lstat'ed the directory on every add or removal and polled
   * each changing file's size every 20 ms, most of the agent's CPU while hundreds of files change.
   */
  async watch(): Promise<void> {
    if (this.#watcher) return;
    this.#watcher = watch(this.dir, { persistent: false }, (_event, name) => {
      const file = name === null ? null : name.toString();
      if (file !== null && POLICY_FILE.test(file) && !file.includes('/')) this.#settle(join(this.dir, file));
      else this.#settle(RESCAN);
    });
    this.#watcher.on('error', (err) => {
      this.#log.error({ err }, 'policy directory watch failed');
    });
  }

  /** Reads `path` (or the whole directory for RESCAN) once it had no event for SETTLE_MS; one timer per file at most. */
  #settle(path: string): void {
    const timer = this.#settling.get(path);
    if (timer) clearTimeout(timer);
    this.#settling.set(
      path,
      setTimeout(() => {
        this.#settling.delete(path);
        this.#work(() => {
          if (path === RESCAN) this.#rescan();
          else if (existsSync(path)) this.#load(path, true);
          else this.#remove(path);
        });
      }, SETTLE_MS),
    );
  }

  /** Every policy file as it is now: new and changed ones loaded (unchanged text is no change), vanished ones dropped. */
  #rescan(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => POLICY_FILE.test(n));
    } catch (err) {
      this.#log.error({ err, dir: this.dir }, 'cannot read the policy directory');
      return;
    }
    const present = new Set(names.map((n) => join(this.dir, n)));
    for (const path of [...this.#files.keys()]) if (!present.has(path)) this.#remove(path);
    for (const path of [...present].sort()) this.#load(path, true);
  }

  async close(): Promise<void> {
    for (const t of this.#settling.values()) clearTimeout(t);
    this.#settling.clear();
    this.#watcher?.close();
    this.#watcher = null;
  }

  /**
   * Takes in files the agent itself just wrote or removed, without waiting for the watcher
   * (which reports them again later, to no effect) and without re-reading the others.
   */
  refresh(paths: Iterable<string>): void {
    // All of them first, then files rejected for a clash: `policy import` empties the files its
    // policies came from before it writes its own, and a file refused for defining one of them
    // must not take it in between.
    this.#deferClashes(() => {
      for (const path of paths) {
        if (existsSync(path)) this.#load(path, false);
        else if (this.#files.delete(path)) {
          this.#digests.delete(path);
          this.#forgetLastGood(path);
          this.#clashed.delete(path);
          this.#revision++;
          this.#judgeClashedAgain(path);
        }
      }
    });
  }

  /** Runs `fn`, judging files rejected for a clash once at its end rather than after each change in it. */
  #deferClashes(fn: () => void): void {
    this.#deferring = true;
    try {
      fn();
    } finally {
      this.#deferring = false;
    }
    if (this.#rejudge) {
      this.#rejudge = false;
      this.#judgeClashedAgain(null);
    }
  }

  policies(): PolicyObject[] {
    return [...this.#files.values()].flatMap((f) => f.policies);
  }

  problems(): PolicyProblem[] {
    return [...this.#files.values()].flatMap((f) => f.problems);
  }

  /** Warnings of the policies in force (`membrane status` reports them). */
  warnings(): PolicyProblem[] {
    return [...this.#files.values()].flatMap((f) => f.warnings);
  }

  files(): ReadonlyMap<string, FileState> {
    return this.#files;
  }

  #load(path: string, notify: boolean): void {
    if (!POLICY_FILE.test(path)) return;
    let text: string;
    try {
      if (statSync(path).size > MAX_POLICY_FILE_BYTES) {
        this.#reject(path, [{ file: path, name: '<unnamed>', path: '', message: `file is larger than ${MAX_POLICY_FILE_BYTES} bytes` }]);
        return;
      }
      text = readFileSync(path, 'utf8');
    } catch (err) {
      // Unreadable is rejected like invalid: what the file had (or, at start, its last good text) stays in force.
      this.#log.error({ err, file: path }, 'cannot read policy file');
      this.#digests.delete(path);
      this.#reject(path, [{ file: path, name: '<unnamed>', path: '', message: `cannot read the file: ${(err as Error).message}` }]);
      return;
    }
    // The watcher reports files the agent itself wrote (and took in through refresh) once more,
    // later: judging the same text again would bump the revision after `policy import` already
    // printed it, and regenerate for nothing.
    const digest = createHash('sha256').update(text).digest('hex');
    if (this.#digests.get(path) === digest) return;
    this.#digests.set(path, digest);
    const result = loadPolicyText(text, path);
    if (result.problems.length > 0) {
      this.#reject(path, result.problems);
      return;
    }
    const clashes = this.#clashes(path, result.policies);
    if (clashes.length > 0) {
      this.#clashed.add(path);
      this.#reject(path, clashes);
      return;
    }
    this.#clashed.delete(path);
    const hadNames = this.#files.get(path)?.policies ?? [];
    this.#files.set(path, { policies: result.policies, problems: [], warnings: result.warnings });
    if (this.#lastGoodStore && this.#lastGood.get(path) !== text) {
      this.#lastGood.set(path, text);
      this.#saveLastGood();
    }
    for (const w of result.warnings) this.#log.warn({ file: path, policy: w.name, field: w.path }, formatWarning(w));
    this.#revision++;
    this.#log.info({ file: path, policies: result.policies.map((p) => p.name), revision: this.#revision }, 'policy file loaded');
    if (hadNames.some((p) => !result.policies.some((q) => sameObject(p, q)))) this.#judgeClashedAgain(path);
    if (notify) this.#onChange();
  }

  /**
   * Problems for each policy of `path` another file already defines (same kind, namespace and
   * name): Kubernetes holds one object per name, so the file that comes second (in name order at
   * start, the new one later) is rejected whole, naming the file that has it.
   */
  #clashes(path: string, policies: readonly PolicyObject[]): PolicyProblem[] {
    const out: PolicyProblem[] = [];
    for (const p of policies) {
      for (const [other, state] of this.#files) {
        if (other === path || !state.policies.some((q) => sameObject(p, q))) continue;
        out.push(definedElsewhereProblem(p, path, other));
        break;
      }
    }
    return out;
  }

  /** Files rejected for a clash are judged again once `changed` no longer holds what they clashed with. */
  #judgeClashedAgain(changed: string | null): void {
    if (this.#deferring) {
      this.#rejudge = true;
      return;
    }
    for (const path of [...this.#clashed]) {
      if (path === changed) continue;
      this.#clashed.delete(path);
      this.#digests.delete(path);
      if (existsSync(path)) this.#load(path, false);
    }
  }

  #reject(path: string, problems: readonly PolicyProblem[]): void {
    const previous = this.#files.get(path) ?? this.#restored(path);
    this.#files.set(path, { policies: previous?.policies ?? [], problems, warnings: previous?.warnings ?? [] });
    for (const p of problems) this.#log.error({ file: path, policy: p.name, field: p.path }, formatProblem(p));
    const kept = previous?.policies.map((p) => p.name) ?? [];
    if (kept.length > 0) this.#log.warn({ file: path, kept }, 'invalid policy file rejected; its last good policies stay in force');
    else this.#log.warn({ file: path, kept }, 'invalid policy file rejected; it was never accepted, so none of its policies is in force');
  }

  /** The file's last good version from an earlier run (first judged invalid in this one), if it still validates. */
  #restored(path: string): FileState | undefined {
    const text = this.#lastGood.get(path);
    if (text === undefined) return undefined;
    const result = loadPolicyText(text, path);
    if (result.problems.length > 0 || this.#clashes(path, result.policies).length > 0) return undefined;
    this.#log.warn({ file: path, policies: result.policies.map((p) => p.name) }, 'policy file is invalid at start: enforcing its last good version, kept in the state directory');
    return { policies: result.policies, problems: [], warnings: result.warnings };
  }

  #forgetLastGood(path: string): void {
    if (this.#lastGood.delete(path)) this.#saveLastGood();
  }

  #saveLastGood(): void {
    this.#lastGoodStore?.save(Object.fromEntries(this.#lastGood));
  }

  #remove(path: string): void {
    this.#digests.delete(path);
    this.#forgetLastGood(path);
    this.#clashed.delete(path);
    if (!this.#files.delete(path)) return;
    this.#revision++;
    this.#log.info({ file: path, revision: this.#revision }, 'policy file removed');
    this.#judgeClashedAgain(path);
    this.#onChange();
  }
}

