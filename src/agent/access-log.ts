/**
 * The proxy's access-log file: written asynchronously in batches, rotated by size so it never
 * grows without bound (issue 7: 215 MB after 436k requests), with a bounded buffer.
 *
 * Rotation is logrotate's `size` + `rotate N`, with Cilium's defaults for its Hubble export file
 * (`--hubble-export-file-max-size-mb` 10, `--hubble-export-file-max-backups` 5): when the live
 * file passes `maxSizeBytes`, FILE.(N-1) → FILE.N … FILE → FILE.1, and writing goes on in a new
 * FILE. The disk holds at most (maxBackups + 1) × maxSizeBytes plus one line. With
 * `rotateIntervalMs` (logrotate's `hourly`/`daily` with `notifempty`, as an interval) the live file
 * also rotates once it has been live that long and holds a line; the same renames, the same bound.
 * The path `stdout` (ACCESS_LOG_STDOUT) writes the same lines, batched and bounded, to fd 1 for
 * the container runtime to collect, as Cilium's `--hubble-export-file-path stdout`.
 *
 * Writing (issue 9: the access log is never the bottleneck): `write()` only queues the line; the
 * queue goes to the file in one `write(2)` per batch, when 64 KiB are waiting or 100 ms after the
 * first line waiting (Envoy buffers its access-log files the same way: `file_flush_min_size_kb`,
 * `--file-flush-interval-msec`), never with a synchronous call on the request path. Rotations are
 * points in that queue, done (renames, the new file) between two writes, so every line lands
 * whole, in order, in the file that was live when it was written. Past `maxBufferBytes` waiting,
 * lines are dropped and counted, never queued.
 *
 * Libraries considered: pino's own destination (SonicBoom, used here before) issues one write per
 * line or two under load and rotating meant synchronous renames inside a log call; pino-roll names
 * the live file FILE.<n> and counts up (the path given would not be the live log);
 * rotating-file-stream keeps the name but is a plain Writable with no bound on its queue.
 */
import { mkdirSync, openSync, statSync } from 'node:fs';
import { close as closeFd, open, rename, rm, write } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';

export interface AccessLogFileOptions {
  readonly path: string;
  /** Rotate when the live file passes this size, bytes. */
  readonly maxSizeBytes: number;
  /** Rotated files kept (FILE.1 … FILE.N); 0 keeps none: the live file starts over. */
  readonly maxBackups: number;
  /** Bytes waiting for the disk; beyond it lines are dropped and counted. Default 16 MiB. */
  readonly maxBufferBytes?: number;
  /** A batch is written once this many bytes wait. Default 64 KiB. */
  readonly batchBytes?: number;
  /** …or this long after its first line, ms. Default 100. */
  readonly flushIntervalMs?: number;
  /**
   * Also rotate the live file once it has been live this long, ms, unless it is empty (logrotate's
   * `notifempty`); 0 or absent: by size only. The clock starts again at every rotation.
   */
  readonly rotateIntervalMs?: number;
}

/**
 * The `path` that sends the lines to the agent's standard output instead of a file (as Cilium's
 * `--hubble-export-file-path stdout`): same batching and bound, no rotation.
 */
export const ACCESS_LOG_STDOUT = 'stdout';

/**
 * Writes to a pipe of at most this many bytes are atomic (POSIX PIPE_BUF, 4096 on Linux): on
 * stdout, shared with the agent's own log, batches go in pieces of whole lines up to this size.
 */
const PIPE_BUF = 4096;

/** Cilium's defaults for a rotated flow file (pkg/hubble/exporter/exporteroption: MaxSizeMB 10, MaxBackups 5). */
export const ACCESS_LOG_DEFAULTS = { maxSizeMb: 10, maxBackups: 5 } as const;

/** A point in the queue where the live file is rotated. */
const ROTATE = Symbol('rotate');

function writeAsync(fd: number, buf: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, offset, length, null, (err, n) => (err ? reject(err) : resolve(n))));
}
const openAsync = promisify(open);
const closeAsync = promisify(closeFd);
const renameAsync = promisify(rename);
const rmAsync = promisify(rm);

export class AccessLogFile {
  readonly path: string;
  #maxSize: number;
  #maxBackups: number;
  #maxBuffer: number;
  #batchBytes: number;
  #flushMs: number;
  #fd: number;
  /** Lines and rotation points not yet written, in order. */
  #queue: Array<string | Uint8Array | typeof ROTATE> = [];
  /** Rotation points in the queue. */
  #rotationsQueued = 0;
  /** Bytes of lines queued or being written. */
  #pendingBytes = 0;
  /** The live file's size once everything queued is written: decides where rotations go. */
  #size: number;
  /** The writer is running (a write or a rotation in progress); at most one. */
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closing = false;
  #dropped = 0;
  #rotations = 0;
  #failedRotations = 0;
  #writeErrors = 0;
  /** Writing to fd 1, not a file: never rotated, never closed. */
  #stdout: boolean;
  #rotateIntervalMs: number;
  #ageTimer: NodeJS.Timeout | null = null;

  constructor(opts: AccessLogFileOptions) {
    if (!(opts.maxSizeBytes > 0)) throw new RangeError(`maxSizeBytes must be positive, got ${opts.maxSizeBytes}`);
    if (!Number.isInteger(opts.maxBackups) || opts.maxBackups < 0) throw new RangeError(`maxBackups must be a whole number, got ${opts.maxBackups}`);
    this.path = opts.path;
    this.#maxSize = opts.maxSizeBytes;
    this.#maxBackups = opts.maxBackups;
    this.#maxBuffer = opts.maxBufferBytes ?? 16 * 1024 * 1024;
    this.#batchBytes = opts.batchBytes ?? 64 * 1024;
    this.#flushMs = opts.flushIntervalMs ?? 100;
    this.#rotateIntervalMs = opts.rotateIntervalMs ?? 0;
    if (!(this.#rotateIntervalMs >= 0)) throw new RangeError(`rotateIntervalMs must be ≥ 0, got ${opts.rotateIntervalMs}`);
    this.#stdout = opts.path === ACCESS_LOG_STDOUT;
    if (this.#stdout) {
      this.#fd = 1;
      this.#size = 0;
      this.#maxSize = Infinity;
      return;
    }
    // At startup, not on a request's path: the directory and the live file exist before any line.
    mkdirSync(dirname(opts.path), { recursive: true });
    this.#size = sizeOf(opts.path);
    // A new file is owner-only, as Cilium's rotating writer (lumberjack, 0600): lines carry paths
    // and headers. An existing one keeps its mode, as there: an operator may have opened it to a
    // log shipper's group on purpose.
    this.#fd = openSync(this.path, 'a', 0o600);
    // A file already over the limit (an earlier run) rotates before the first new line.
    if (this.#size >= this.#maxSize) this.#queueRotation();
    else this.#armAgeTimer();
  }

  /** pino's stream interface: one serialised line. Never blocks; past the buffer bound the line is dropped. */
  write(line: string): void {
    this.#enqueue(line, Buffer.byteLength(line));
  }

  /** One line (or a piece of whole lines) of `bytes` bytes: queued, or dropped past the buffer bound. */
  #enqueue(line: string | Uint8Array, bytes: number): void {
    if (this.#closing || this.#pendingBytes + bytes > this.#maxBuffer) {
      this.#dropped++;
      return;
    }
    this.#queue.push(line);
    this.#pendingBytes += bytes;
    this.#size += bytes;
    if (this.#size >= this.#maxSize) this.#queueRotation();
    else this.#schedule();
  }

  /**
   * `count` serialised lines at once, concatenated, each ending in `\n` (a proxy worker's batch,
   * as its pino wrote them; a string or its UTF-8 bytes, which are written as they are): queued as
   * one piece, no per-line work, unless they would cross the rotation size, when they go line by
   * line so the rotation falls between the same two lines as with `write`. Past the buffer bound
   * the whole batch is dropped, and its lines counted.
   */
  writeLines(text: string | Uint8Array, count: number): void {
    const bytes = typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength;
    if (count <= 1) {
      if (bytes > 0) this.#enqueue(text, bytes);
      return;
    }
    if (this.#closing || this.#pendingBytes + bytes > this.#maxBuffer) {
      this.#dropped += count;
      return;
    }
    if (this.#size + bytes >= this.#maxSize) {
      const data = typeof text === 'string' ? Buffer.from(text) : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
      let start = 0;
      while (start < data.length) {
        const end = data.indexOf(0x0a, start);
        const stop = end < 0 ? data.length : end + 1;
        this.#enqueue(data.subarray(start, stop), stop - start);
        start = stop;
      }
      return;
    }
    this.#queue.push(text);
    this.#pendingBytes += bytes;
    this.#size += bytes;
    this.#schedule();
  }

  /** Rotations done and failed, lines dropped because the disk did not keep up (or failed), failed writes. */
  stats(): { rotations: number; failedRotations: number; dropped: number; writeErrors: number } {
    return { rotations: this.#rotations, failedRotations: this.#failedRotations, dropped: this.#dropped, writeErrors: this.#writeErrors };
  }

  /** Writes out everything queued (rotations included) and closes the file. Later lines are dropped. */
  async close(): Promise<void> {
    if (this.#closing) {
      await this.#running;
      return;
    }
    this.#closing = true;
    this.#clearTimer();
    if (this.#ageTimer) clearTimeout(this.#ageTimer);
    while (this.#running || this.#queue.length > 0) await (this.#running ?? this.#start());
    if (!this.#stdout) await closeAsync(this.#fd).catch(() => undefined);
  }

  #queueRotation(): void {
    this.#size = 0;
    this.#queue.push(ROTATE);
    this.#rotationsQueued++;
    this.#armAgeTimer();
    this.#start();
  }

  /** (Re)starts the clock of time-based rotation: the live file's age is counted from now. */
  #armAgeTimer(): void {
    if (this.#rotateIntervalMs <= 0) return;
    if (this.#ageTimer) clearTimeout(this.#ageTimer);
    this.#ageTimer = setTimeout(() => {
      this.#ageTimer = null;
      if (this.#closing) return;
      if (this.#size > 0) this.#queueRotation();
      else this.#armAgeTimer();
    }, this.#rotateIntervalMs).unref();
  }

  /** One batch to the fd: whole, or on stdout in atomic pieces of whole lines; waits out EAGAIN (a non-blocking stdout). */
  async #writeOut(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      let end = data.length;
      if (this.#stdout && end - off > PIPE_BUF) {
        const nl = data.lastIndexOf(0x0a, off + PIPE_BUF - 1);
        end = nl >= off ? nl + 1 : off + PIPE_BUF;
      }
      while (off < end) {
        try {
          off += await writeAsync(this.#fd, data, off, end - off);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }
  }

  /** Starts the writer now when a batch is full, else once the flush interval passes. */
  #schedule(): void {
    if (this.#running) return;
    if (this.#pendingBytes >= this.#batchBytes) this.#start();
    else this.#timer ??= setTimeout(() => this.#start(), this.#flushMs).unref();
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #start(): Promise<void> {
    this.#clearTimer();
    this.#running ??= this.#drain().finally(() => {
      this.#running = null;
      // What arrived during the last write: a full batch goes now, the rest after the interval.
      if (this.#queue.length > 0 && !this.#closing) this.#schedule();
    });
    return this.#running;
  }

  /** Writes the queue out: lines in batches up to each rotation point, then the rotation. */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      if (this.#queue[0] === ROTATE) {
        this.#queue.shift();
        this.#rotationsQueued--;
        await this.#rotate();
        continue;
      }
      const end = this.#rotationsQueued > 0 ? this.#queue.indexOf(ROTATE) : -1;
      const lines = this.#queue.splice(0, end < 0 ? this.#queue.length : end) as Array<string | Uint8Array>;
      const data = lines.every((l) => typeof l === 'string') ? Buffer.from(lines.join('')) : Buffer.concat(lines.map((l) => (typeof l === 'string' ? Buffer.from(l) : l)));
      try {
        await this.#writeOut(data);
      } catch {
        // The disk refused (full, gone): those lines are lost, and counted.
        this.#writeErrors++;
        this.#dropped += lines.length;
      }
      this.#pendingBytes -= data.length;
      // Under load, more than a batch arrives while a write runs: keep going; otherwise wait to batch.
      if (!this.#closing && this.#rotationsQueued === 0 && this.#pendingBytes < this.#batchBytes) return;
    }
  }

  /**
   * Renames the files and opens a new live one, between two writes. Never throws: a rotation
   * that fails (the directory turned read-only) is counted, writing goes on in the old file, and
   * it is tried again after another maxSizeBytes.
   */
  async #rotate(): Promise<void> {
    try {
      if (this.#maxBackups === 0) {
        await rmAsync(this.path, { force: true });
      } else {
        await rmAsync(`${this.path}.${this.#maxBackups}`, { force: true });
        for (let i = this.#maxBackups - 1; i >= 1; i--) await renameIfThere(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        await renameIfThere(this.path, `${this.path}.1`);
      }
      const fd = await openAsync(this.path, 'a', 0o600);
      const old = this.#fd;
      this.#fd = fd;
      await closeAsync(old).catch(() => undefined);
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

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function renameIfThere(from: string, to: string): Promise<void> {
  try {
    await renameAsync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
