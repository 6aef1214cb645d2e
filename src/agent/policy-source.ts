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
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { loadPolicyText, formatProblem, type PolicyObject, type PolicyProblem } from '../policy/index.js';

const POLICY_FILE = /\.(ya?ml|json)$/;
/** Bigger than any sane policy file; bounds what a stray file in the directory can cost us. */
const MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024;

export interface FileState {
  readonly policies: readonly PolicyObject[];
  readonly problems: readonly PolicyProblem[];
}

export class PolicyDirectory {
  readonly dir: string;
  #files = new Map<string, FileState>();
  #watcher: FSWatcher | null = null;
  #onChange: () => void;
  #log: Logger;
  #revision = 0;

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
      else if (this.#files.delete(path)) this.#revision++;
    }
  }

  policies(): PolicyObject[] {
    return [...this.#files.values()].flatMap((f) => f.policies);
  }

  problems(): PolicyProblem[] {
    return [...this.#files.values()].flatMap((f) => f.problems);
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
    const result = loadPolicyText(text, path);
    if (result.problems.length > 0) {
      this.#reject(path, result.problems);
      return;
    }
    this.#files.set(path, { policies: result.policies, problems: [] });
    this.#revision++;
    this.#log.info({ file: path, policies: result.policies.map((p) => p.name), revision: this.#revision }, 'policy file loaded');
    if (notify) this.#onChange();
  }

  #reject(path: string, problems: readonly PolicyProblem[]): void {
    const previous = this.#files.get(path);
    this.#files.set(path, { policies: previous?.policies ?? [], problems });
    for (const p of problems) this.#log.error({ file: path, policy: p.name, field: p.path }, formatProblem(p));
    this.#log.warn(
      { file: path, kept: previous?.policies.map((p) => p.name) ?? [] },
      'invalid policy file rejected; its last good policies stay in force',
    );
  }

  #remove(path: string): void {
    if (!this.#files.delete(path)) return;
    this.#revision++;
    this.#log.info({ file: path, revision: this.#revision }, 'policy file removed');
    this.#onChange();
  }
}
