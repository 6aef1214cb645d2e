/**
 * JSON documents in the agent's state directory, written atomically (write a temporary file,
 * fsync it, rename it over the document): after a crash a document is its last complete version,
 * never a torn one.
 *
 * `write` is synchronous (start-up, stop, rare changes). `writeSoon` is the control plane's path
 * under churn: the document's content is taken from its producer once per event-loop turn at most
 * and written off the event loop (the thread pool), so a burst of endpoint registrations costs one
 * serialisation and one file write, not one per call, and the proxies' CPU is not spent on
 * synchronous I/O. Bounded: per document at most one write in flight and one pending (the pending
 * one takes the producer's value when it starts, so it is always the latest). A producer may
 * resolve later (build a large document in slices between other work) and may give the text
 * itself (`JsonText`).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { membraneError } from '../errors/index.js';

/** A document already serialised as JSON: written as it is. */
export class JsonText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

interface Pending {
  /** The document's current content (read when its write starts). */
  produce: () => unknown;
  /** Settled by the write that took the content of every call made while this was pending. */
  done: Promise<void>;
  settle: (err: Error | null) => void;
}

interface DocumentWrites {
  inflight: Promise<void> | null;
  pending: Pending | null;
  /** Writes started (sync or async): an async write whose rename comes after a newer sync write drops its file. */
  generation: number;
}

export class StateStore {
  readonly dir: string;
  readonly #docs = new Map<string, DocumentWrites>();
  #tmpSeq = 0;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  read<T>(name: string, fallback: T): T {
    const path = join(this.dir, name);
    if (!existsSync(path)) return fallback;
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as T;
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_STATE', `${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Writes `value` now, synchronously. Throws MEMBRANE_ERR_STATE. */
  write(name: string, value: unknown): void {
    const doc = this.#doc(name);
    doc.generation++;
    const path = join(this.dir, name);
    const tmp = `${path}.tmp-${process.pid}-${++this.#tmpSeq}`;
    try {
      writeFileSync(tmp, serialise(value), { mode: 0o600 });
      renameSync(tmp, path);
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_STATE', `${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Writes the document with `produce()`'s value soon, off the event loop; calls within one turn,
   * or while a write of it is in flight, share one write. Resolves when a write that began after
   * this call has been renamed into place (durable); rejects with MEMBRANE_ERR_STATE if it failed
   * (the previous complete version stays). A caller need not wait: failures are also kept for the
   * next caller, never thrown unhandled.
   */
  writeSoon(name: string, produce: () => unknown | Promise<unknown>): Promise<void> {
    const doc = this.#doc(name);
    if (doc.pending) {
      doc.pending.produce = produce;
      return doc.pending.done;
    }
    let settle!: (err: Error | null) => void;
    const done = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    // Nobody may be waiting (a test's manager, a change no API call awaits): never unhandled.
    done.catch(() => undefined);
    doc.pending = { produce, done, settle };
    if (!doc.inflight) setImmediate(() => this.#start(name, doc));
    return done;
  }

  /** Resolves when no write is in flight or pending (agent stop, before its final synchronous writes). */
  async settled(): Promise<void> {
    for (;;) {
      const busy = [...this.#docs.values()].flatMap((d) => [d.inflight, d.pending?.done].filter((p): p is Promise<void> => !!p));
      if (busy.length === 0) return;
      await Promise.allSettled(busy);
    }
  }

  #doc(name: string): DocumentWrites {
    let doc = this.#docs.get(name);
    if (!doc) {
      doc = { inflight: null, pending: null, generation: 0 };
      this.#docs.set(name, doc);
    }
    return doc;
  }

  #start(name: string, doc: DocumentWrites): void {
    const job = doc.pending;
    if (!job || doc.inflight) return;
    doc.pending = null;
    const generation = ++doc.generation;
    const failed = (err: unknown): Error => membraneError('MEMBRANE_ERR_STATE', `${join(this.dir, name)}: ${(err as Error).message}`, { cause: err });
    let produced: unknown;
    try {
      produced = job.produce();
    } catch (err) {
      job.settle(failed(err));
      return;
    }
    // The write is in flight from here, while an asynchronous producer still builds the content.
    doc.inflight = Promise.resolve(produced)
      .then(
        (value) => {
          try {
            return serialise(value);
          } catch (err) {
            throw failed(err);
          }
        },
        (err: unknown) => {
          throw failed(err);
        },
      )
      .then((text) => this.#writeFile(name, text, () => doc.generation === generation))
      .then(
        () => job.settle(null),
        (err: unknown) => job.settle(err as Error),
      );
    void doc.inflight.then(() => {
      doc.inflight = null;
      if (doc.pending) this.#start(name, doc);
    });
  }

  async #writeFile(name: string, text: string, stillNewest: () => boolean): Promise<void> {
    const path = join(this.dir, name);
    const tmp = `${path}.tmp-${process.pid}-${++this.#tmpSeq}`;
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(text);
        // Renamed only once its content is on disk: a crash leaves the old version or this one.
        await fh.datasync();
      } finally {
        await fh.close();
      }
      // A synchronous write (stop) came after this one began: it holds newer content.
      if (!stillNewest()) {
        await unlink(tmp).catch(() => undefined);
        return;
      }
      await rename(tmp, path);
      // The rename is durable only once the directory is: an acknowledged write must survive a
      // power loss, not just a crash of the agent.
      const dir = await open(this.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw membraneError('MEMBRANE_ERR_STATE', `${path}: ${(err as Error).message}`, { cause: err });
    }
  }
}

function serialise(value: unknown): string {
  return value instanceof JsonText ? `${value.text}\n` : `${JSON.stringify(value, null, 2)}\n`;
}
