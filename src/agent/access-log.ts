/**
 * The proxy's access-log file, rotated by size so it never grows without bound (issue 7: 215 MB
 * after 436k requests).
 *
 * Rotation is logrotate's `size` + `rotate N`, with Cilium's defaults for its Hubble export file
 * (`--hubble-export-file-max-size-mb` 10, `--hubble-export-file-max-backups` 5): when the live
 * file passes `maxSizeBytes`, FILE.(N-1) → FILE.N … FILE → FILE.1, and writing goes on in a new
 * FILE. The disk holds at most (maxBackups + 1) × maxSizeBytes plus one line.
 *
 * Built on pino's own destination (SonicBoom): each live file is one destination on an fd opened
 * here; at rotation the files are renamed and a new destination opened, and the old one ends by
 * writing what it still buffers into its own file (renaming keeps the inode) — so every line
 * lands whole, in order, in the file that was live when it was written. Libraries considered: pino-roll names the live file FILE.<n> and
 * counts up (the path given would not be the live log); rotating-file-stream keeps the name but
 * is a plain Writable that pino writes to without backpressure, an unbounded queue. Here the
 * buffer is bounded (`maxBufferBytes`): past it lines are dropped and counted, never queued.
 */
import { mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';

export interface AccessLogFileOptions {
  readonly path: string;
  /** Rotate when the live file passes this size, bytes. */
  readonly maxSizeBytes: number;
  /** Rotated files kept (FILE.1 … FILE.N); 0 keeps none: the live file starts over. */
  readonly maxBackups: number;
  /** Bytes buffered while the disk is slow; beyond it lines are dropped and counted. */
  readonly maxBufferBytes?: number;
}

/** Cilium's defaults for a rotated flow file (pkg/hubble/exporter/exporteroption: MaxSizeMB 10, MaxBackups 5). */
export const ACCESS_LOG_DEFAULTS = { maxSizeMb: 10, maxBackups: 5 } as const;

export class AccessLogFile {
  readonly path: string;
  #maxSize: number;
  #maxBackups: number;
  #maxBuffer: number;
  #dest: Destination;
  /** Destinations of rotated files still writing out their buffers. */
  #ending = new Set<Promise<void>>();
  #size: number;
  #dropped = 0;
  #rotations = 0;
  #failedRotations = 0;

  constructor(opts: AccessLogFileOptions) {
    if (!(opts.maxSizeBytes > 0)) throw new RangeError(`maxSizeBytes must be positive, got ${opts.maxSizeBytes}`);
    if (!Number.isInteger(opts.maxBackups) || opts.maxBackups < 0) throw new RangeError(`maxBackups must be a whole number, got ${opts.maxBackups}`);
    this.path = opts.path;
    this.#maxSize = opts.maxSizeBytes;
    this.#maxBackups = opts.maxBackups;
    mkdirSync(dirname(opts.path), { recursive: true });
    this.#maxBuffer = opts.maxBufferBytes ?? 16 * 1024 * 1024;
    this.#size = sizeOf(opts.path);
    this.#dest = this.#open();
    // A file already over the limit (an earlier run) rotates before the first new line.
    if (this.#size >= this.#maxSize) this.#rotate();
  }

  /** pino's stream interface: one serialised line. */
  write(line: string): void {
    this.#dest.write(line);
    this.#size += Buffer.byteLength(line);
    if (this.#size >= this.#maxSize) this.#rotate();
  }

  /** Rotations done and failed, and lines dropped because the disk did not keep up. */
  stats(): { rotations: number; failedRotations: number; dropped: number } {
    return { rotations: this.#rotations, failedRotations: this.#failedRotations, dropped: this.#dropped };
  }

  /** Writes out what is buffered (in the live file and rotated ones) and closes them. */
  async close(): Promise<void> {
    await Promise.all([...this.#ending, end(this.#dest)]);
  }

  #open(): Destination {
    const dest = pino.destination({ dest: openSync(this.path, 'a'), sync: false, maxLength: this.#maxBuffer });
    dest.on('drop', () => this.#dropped++);
    return dest;
  }

  /**
   * Never throws: it runs inside a log call on the proxy's request path. A rotation that fails
   * (the directory turned read-only) is counted and tried again after another maxSizeBytes.
   */
  #rotate(): void {
    this.#size = 0;
    try {
      if (this.#maxBackups === 0) {
        rmSync(this.path, { force: true });
      } else {
        rmSync(`${this.path}.${this.#maxBackups}`, { force: true });
        for (let i = this.#maxBackups - 1; i >= 1; i--) renameIfThere(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        renameIfThere(this.path, `${this.path}.1`);
      }
      const old = this.#dest;
      this.#dest = this.#open();
      const ending = end(old).finally(() => this.#ending.delete(ending));
      this.#ending.add(ending);
      this.#rotations++;
    } catch {
      this.#failedRotations++;
    }
  }
}

/** A pino logger writing one JSON line per record to a rotated access-log file (no `pid`/`hostname`). */
export function accessLogger(file: AccessLogFile): pino.Logger {
  return pino({ base: null }, file);
}

type Destination = ReturnType<typeof pino.destination>;

/** Ends a destination once its buffer is written; resolves on close or error alike. */
function end(dest: Destination): Promise<void> {
  return new Promise((resolve) => {
    dest.once('close', () => resolve());
    dest.once('error', () => resolve());
    dest.end();
  });
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function renameIfThere(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
