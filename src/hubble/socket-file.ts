/**
 * Unix socket files owned by one agent: a socket another process answers on is never taken
 * over, only a dead one (left by a crash) is removed, and on exit a process removes only the
 * socket file it created itself (same device and inode), never a successor's.
 *
 * libuv unlinks a listening pipe's path by name when the server closes, whatever is there by
 * then; so a server binds a private name (`bindingPath`) and the file is renamed into place
 * (`publishSocket`): libuv's unlink then hits the private name, and removeOwnSocket decides.
 *
 * The private name is inside a fresh directory of mode 0700 (mkdtemp, next to `path`, so the
 * rename stays on one filesystem): bind(2) creates the socket with 0777 & ~umask, and until it is
 * 0600 no other user may reach it. A umask around listen would do the same but is process-wide
 * (and cannot be set from a worker thread); chmod after bind in a shared directory left a window
 * in which another user could connect.
 */
import { chmodSync, lstatSync, mkdtempSync, renameSync, rmdirSync, rmSync, type Stats } from 'node:fs';
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

/** path → the private directory its socket is bound in until published. */
const bindingDirs = new Map<string, string>();

/**
 * The private name to bind before `publishSocket` moves the socket to `path`: `s` in a directory
 * of mode 0700 created next to `path` (once per path until published or `abandonBinding`).
 * Errors: those of mkdtemp (the directory of `path` missing or not writable).
 */
export function bindingPath(path: string): string {
  let dir = bindingDirs.get(path);
  if (!dir) {
    dir = mkdtempSync(join(dirname(path), `.${basename(path)}.`));
    bindingDirs.set(path, dir);
  }
  return join(dir, 's');
}

/** Removes the private directory of `path` and what is bound in it (a bind that failed). */
export function abandonBinding(path: string): void {
  const dir = bindingDirs.get(path);
  if (!dir) return;
  bindingDirs.delete(path);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Makes the socket bound at `bindingPath(path)` mode 0600 and moves it to `path` (rename: atomic,
 * the listener keeps serving), removes the private directory, and returns the socket's identity.
 * Errors: `code` naming the path when the chmod or rename fails (the private directory is removed).
 */
export function publishSocket(path: string, code: ErrorCode): SocketFileId {
  const from = bindingPath(path);
  try {
    // Still unreachable by others (0700 directory): it is 0600 before it is visible at `path`.
    chmodSync(from, 0o600);
    renameSync(from, path);
  } catch (err) {
    abandonBinding(path);
    throw membraneError(code, `${path}: ${(err as Error).message}`, { cause: err });
  }
  const dir = bindingDirs.get(path)!;
  bindingDirs.delete(path);
  // Empty now; libuv's unlink of the private name at close then finds nothing.
  rmdirSync(dir);
  const st = lstatSync(path);
  return { path, dev: st.dev, ino: st.ino };
}

/** Removes the socket file only if it is still the one `id` names (not a later agent's). */
export function removeOwnSocket(id: SocketFileId | null): void {
  if (!id) return;
  const st = lstatOrNull(id.path);
  if (st && st.dev === id.dev && st.ino === id.ino) rmSync(id.path, { force: true });
}
