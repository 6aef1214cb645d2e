/**
 * Unix socket files owned by one agent: a socket another process answers on is never taken
 * over, only a dead one (left by a crash) is removed, and on exit a process removes only the
 * socket file it created itself (same device and inode), never a successor's.
 *
 * libuv unlinks a listening pipe's path by name when the server closes, whatever is there by
 * then; so a server binds a private name (`bindingPath`) and the file is renamed into place
 * (`publishSocket`): libuv's unlink then hits the private name, and removeOwnSocket decides.
 */
import { lstatSync, renameSync, rmSync, type Stats } from 'node:fs';
import { connect } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { membraneError, type ErrorCode } from '../errors/index.js';

/** Device and inode of the socket file a process bound. */
export interface SocketFileId {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * Makes `path` free to bind: nothing there, or a socket file nobody answers on (removed).
 * Errors (with `code`, naming the path): a live socket (another agent serves it), a file that is
 * not a socket, a socket that cannot be probed (EACCES, …).
 */
export async function claimSocketPath(path: string, code: ErrorCode): Promise<void> {
  const st = lstatOrNull(path);
  if (!st) return;
  if (!st.isSocket()) throw membraneError(code, `${path} exists and is not a socket`);
  const alive = await new Promise<boolean | Error>((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      sock.destroy();
      // ECONNREFUSED: a socket file with no listener behind it (its process is gone).
      resolve(err.code === 'ECONNREFUSED' ? false : err.code === 'ENOENT' ? false : err);
    });
  });
  if (alive === true) throw membraneError(code, `${path}: another process is serving on this socket (is another agent running?); stop it or choose another path`);
  if (alive instanceof Error) throw membraneError(code, `${path}: cannot probe the existing socket: ${alive.message}`, { cause: alive });
  rmSync(path, { force: true });
}

/** The private name to bind before `publishSocket` moves the socket to `path` (same directory). */
export function bindingPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}`);
}

/**
 * Moves the socket bound at `bindingPath(path)` to `path` (rename: atomic, the listener keeps
 * serving) and returns its identity. Errors: `code` naming the path when the rename fails.
 */
export function publishSocket(path: string, code: ErrorCode): SocketFileId {
  const from = bindingPath(path);
  try {
    renameSync(from, path);
  } catch (err) {
    rmSync(from, { force: true });
    throw membraneError(code, `${path}: ${(err as Error).message}`, { cause: err });
  }
  const st = lstatSync(path);
  return { path, dev: st.dev, ino: st.ino };
}

/** Removes the socket file only if it is still the one `id` names (not a later agent's). */
export function removeOwnSocket(id: SocketFileId | null): void {
  if (!id) return;
  const st = lstatOrNull(id.path);
  if (st && st.dev === id.dev && st.ino === id.ino) rmSync(id.path, { force: true });
}
