/**
 * Local policy source: a directory of CiliumNetworkPolicy / CCNP / NetworkPolicy YAML files.
 *
 *   file added/changed ─► loadPolicyText ─► valid?  yes ─► replace that file's policies ─► onChange
 *                                                    no  ─► keep its last good policies, record problems
 *   file removed       ─► drop its policies ─► onChange
 *
 * A file is the unit of change: one bad document rejects the whole file, and the policies it
 * had before stay in force, so a typo never opens (or closes) traffic by accident.
 */
import { readFileSync, readdirSync, statSync, mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { loadPolicyText, formatProblem, formatWarning, type PolicyObject, type PolicyProblem } from '../policy/index.js';

const POLICY_FILE = /\.(ya?ml|json)$/;
/** Bigger than any sane policy file; bounds what a stray file in the directory can cost us. */
const MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024;

export interface FileState {
  readonly policies: readonly PolicyObject[];
  readonly problems: readonly PolicyProblem[];
  /** Of the policies in force: what Membrane enforces fail-closed (unparsed L7 protocols, mutual auth). */
  readonly warnings: readonly PolicyProblem[];
}

export class PolicyDirectory {
  readonly dir: string;
  #files = new Map<string, FileState>();
  #watcher: FSWatcher | null = null;
  #onChange: () => void;
  #log: Logger;
  #revision = 0;
  /** sha256 of the text each file was last judged on: a re-read of the same text is no change. */
  #digests = new Map<string, string>();

  constructor(dir: string, log: Logger, onChange: () => void) {
    this.dir = resolve(dir);
    this.#log = log;
    this.#onChange = onChange;
    mkdirSync(this.dir, { recursive: true });
  }

  get revision(): number {
    return this.#revision;
  }

  /** Reads every file once, synchronously, so the first regeneration sees the full set. */
  loadAll(): void {
    for (const name of readdirSync(this.dir).sort()) {
      if (POLICY_FILE.test(name)) this.#load(join(this.dir, name), false);
    }
  }

  async watch(): Promise<void> {
    this.#watcher = watch(this.dir, {
      ignoreInitial: true,
      depth: 0,
      // Editors and `cp` write in several steps; read a file once it stopped changing.
      awaitWriteFinish: { stabilityThreshold: 80, pollInterval: 20 },
    });
    this.#watcher.on('add', (p) => this.#load(p, true));
    this.#watcher.on('change', (p) => this.#load(p, true));
    this.#watcher.on('unlink', (p) => this.#remove(p));
    this.#watcher.on('error', (err) => this.#log.error({ err }, 'policy directory watch failed'));
    await new Promise<void>((res) => this.#watcher?.once('ready', () => res()));
  }

  async close(): Promise<void> {
    await this.#watcher?.close();
    this.#watcher = null;
  }

  /**
   * Takes in files the agent itself just wrote or removed, without waiting for the watcher
   * (which reports them again later, to no effect) and without re-reading the others.
   */
  refresh(paths: Iterable<string>): void {
    for (const path of paths) {
      if (existsSync(path)) this.#load(path, false);
      else if (this.#files.delete(path)) {
        this.#digests.delete(path);
        this.#revision++;
      }
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
      this.#log.error({ err, file: path }, 'cannot read policy file');
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
    this.#files.set(path, { policies: result.policies, problems: [], warnings: result.warnings });
    for (const w of result.warnings) this.#log.warn({ file: path, policy: w.name, field: w.path }, formatWarning(w));
    this.#revision++;
    this.#log.info({ file: path, policies: result.policies.map((p) => p.name), revision: this.#revision }, 'policy file loaded');
    if (notify) this.#onChange();
  }

  #reject(path: string, problems: readonly PolicyProblem[]): void {
    const previous = this.#files.get(path);
    this.#files.set(path, { policies: previous?.policies ?? [], problems, warnings: previous?.warnings ?? [] });
    for (const p of problems) this.#log.error({ file: path, policy: p.name, field: p.path }, formatProblem(p));
    this.#log.warn(
      { file: path, kept: previous?.policies.map((p) => p.name) ?? [] },
      'invalid policy file rejected; its last good policies stay in force',
    );
  }

  #remove(path: string): void {
    this.#digests.delete(path);
    if (!this.#files.delete(path)) return;
    this.#revision++;
    this.#log.info({ file: path, revision: this.#revision }, 'policy file removed');
    this.#onChange();
  }
}
