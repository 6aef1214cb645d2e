/**
 * The CLI's agent client and a kept-alive connection the agent closed while the caller's event
 * loop was busy (a test spawning CLI commands synchronously, a slow machine): an idempotent call
 * must not fail with EPIPE.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../../src/cli/client.js';

// The agent's side of the race: it closes a kept-alive connection just as the client's next
// request arrives on it (its idle limit ran out). Each connection answers its first request and
// resets on its second; a new connection is answered again.
const SERVER = `
const net = require('node:net');
net.createServer((c) => {
  let seen = 0;
  let buf = '';
  c.on('data', (d) => {
    buf += d.toString('latin1');
    while (buf.includes('\\r\\n\\r\\n')) {
      const head = buf.slice(0, buf.indexOf('\\r\\n\\r\\n'));
      const len = Number((/content-length: *(\\d+)/i.exec(head) || [0, 0])[1]);
      if (buf.length < head.length + 4 + len) return;
      buf = buf.slice(head.length + 4 + len);
      if (++seen > 1) { c.destroy(); return; }
      const body = JSON.stringify({ method: head.split(' ')[0] });
      c.write('HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: ' + body.length + '\\r\\n\\r\\n' + body);
    }
  });
  c.on('error', () => {});
}).listen(process.argv[1], () => process.stdout.write('ready\\n'));
`;

describe('agent client (issue-9 CI flake: EPIPE on a reused API connection)', () => {
  let dir: string;
  let child: ChildProcess;
  let socket: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mb-client-'));
    socket = join(dir, 'api.sock');
    child = spawn(process.execPath, ['-e', SERVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  });

  afterAll(() => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET, PUT and DELETE on a connection the agent just closed are sent again and answered', async () => {
    const client = new AgentClient(socket);
    for (const method of ['GET', 'PUT', 'DELETE'] as const) {
      await client.request('GET', '/v1/healthz');
      const answer = await client.request<{ method: string }>(method, '/v1/thing', method === 'PUT' ? {} : undefined);
      expect(answer.method).toBe(method);
    }
  });

  it('a POST is never sent twice: the caller sees the agent unreachable', async () => {
    const client = new AgentClient(socket);
    await client.request('GET', '/v1/healthz');
    await expect(client.request('POST', '/v1/policy/trace', {})).rejects.toMatchObject({ code: 'MEMBRANE_ERR_AGENT_UNREACHABLE' });
  });
});
