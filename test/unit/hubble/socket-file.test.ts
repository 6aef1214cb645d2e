/**
 * The Hubble (and API) unix socket is never reachable by another user before it is 0600: it is
 * bound inside a fresh 0700 directory and made 0600 there, then renamed into place
 * (src/hubble/socket-file.ts). Checked with a permissive umask, in a directory anyone may enter,
 * by connecting as user nobody while the socket is bound but not yet published.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { abandonBinding, bindingPath, publishSocket, removeOwnSocket } from '../../../src/hubble/index.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

/** A directory anyone may enter (as /run often is), with umask 0: a socket bound there is 0777. */
function sharedDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sockfile-'));
  chmodSync(dir, 0o755);
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const old = process.umask(0);
  cleanup.push(() => process.umask(old));
  return dir;
}

async function listen(path: string): Promise<Server> {
  const srv = createServer((s) => s.end('hello\n'));
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(path, () => resolve());
  });
  cleanup.push(() => srv.close());
  return srv;
}

/** Connects to `path` as nobody (uid 65534): 'connected' or the error code. */
function connectAsNobody(path: string): string {
  const script = `const s=require('net').connect(${JSON.stringify(path)});s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',e=>console.log(e.code))`;
  const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10_000 });
  return r.stdout.trim();
}

const root = process.getuid?.() === 0;

describe('unix socket files are 0600 before anyone else can reach them', () => {
  it.runIf(root)('bound but not yet published: another user cannot connect; published: 0600, no private directory left', async () => {
    const dir = sharedDir();
    const path = join(dir, 'hubble.sock');
    const bound = bindingPath(path);
    expect(lstatSync(dirname(bound)).mode & 0o777).toBe(0o700);
    await listen(bound);
    expect(connectAsNobody(bound)).toBe('EACCES');
    const id = publishSocket(path, 'MEMBRANE_ERR_HUBBLE_LISTEN');
    expect(lstatSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['hubble.sock']);
    expect(connectAsNobody(path)).toBe('EACCES');
    removeOwnSocket(id);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a bind that is abandoned leaves nothing behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sockfile-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'api.sock');
    expect(bindingPath(path)).toBe(bindingPath(path));
    abandonBinding(path);
    expect(readdirSync(dir)).toEqual([]);
  });
});
