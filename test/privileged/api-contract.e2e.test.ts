/**
 * The agent API's contract against the real agent (issue 7, items 4 and 6): every route answers
 * its documented status, every malformed request — bad percent-escapes, bad JSON, oversized or
 * slow requests, unknown routes, wrong methods and content types, garbage HTTP — gets a 4xx with
 * a registry code, and the agent is still running and serving afterwards. Through the CLI, the
 * user sees the agent's own MEMBRANE_ERR_* code and the exit status that goes with it.
 *
 * Malformed requests go over a raw unix-socket connection, byte for byte, so nothing in a client
 * library can tidy them up first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestNode, eventually, privilegedSkipReason, RULE1_L3L4 } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'apicontract';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } & Record<string, unknown>;
}

/**
 * Writes `request` to the agent's socket (all at once, or in `parts`) and reads one answer: until
 * its content-length is in, or the server closes.
 */
function raw(socket: string, request: string | Buffer | (string | Buffer)[], closeAfterMs?: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    const chunks: Buffer[] = [];
    let done = false;
    c.on('data', (d: Buffer) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (end >= 0 && length && Buffer.byteLength(text.slice(end + 4)) >= Number(length[1])) finish();
    });
    c.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    c.on('close', finish);
    function finish(): void {
      if (done) return;
      done = true;
      c.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers = Object.fromEntries(
        headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      const body = rest.join('\r\n\r\n');
      let json = {};
      try {
        json = JSON.parse(body) as object;
      } catch {
        /* left empty: the assertions say what was expected */
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body, json });
    }
    for (const part of Array.isArray(request) ? request : [request]) c.write(part);
    if (closeAfterMs !== undefined) setTimeout(() => c.end(), closeAfterMs);
  });
}

/** A complete HTTP/1.1 request with `connection: close`, so the answer ends with the connection. */
function req(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Buffer {
  const h = { host: 'agent', connection: 'close', ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }), ...headers };
  const head = `${method} ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head), body === undefined ? Buffer.alloc(0) : Buffer.from(body)]);
}

const TWO_DOCS = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: doc-a
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress: [{fromEndpoints: [{matchLabels: {app: b}}]}]
---
# doc-b stays when doc-a is deleted, comment and all
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: doc-b
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingress: [{fromEndpoints: [{matchLabels: {app: a}}]}]
`;

const INVALID = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: broken
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress:
    - toPorts:
        - ports: [{port: "99999", protocol: TCP}]
`;

describe.skipIf(skip !== null)('agent API contract (issue-7)' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;

  beforeAll(async () => {
    TestNode.sweep(ID, []);
    node = new TestNode(ID);
    await node.startAgent();
  });

  afterAll(async () => {
    await node?.cleanup();
  });

  /** The agent process is alive and answers. */
  async function alive(): Promise<boolean> {
    if (node.agent?.exitCode !== null) return false;
    return node.client.request('GET', '/v1/healthz').then(() => true, () => false);
  }

  it('issue-7 a malformed percent-escape in the path is a 400 and the agent keeps running', async () => {
    const r = await raw(node.socket, req('DELETE', '/v1/endpoints/%E0%A4%A/x'));
    expect(r.status).toBe(400);
    expect(r.json.error?.code).toBe('MEMBRANE_ERR_API_REQUEST');
    expect(r.json.error?.message).toContain('%E0%A4%A');
    expect(await alive()).toBe(true);
    for (const path of ['/v1/services/%ZZ/x', '/v1/endpoints/default/%', '/v1/endpoints/%C0%80/x']) {
      const again = await raw(node.socket, req('DELETE', path));
      expect(`${path} ${again.status} ${again.json.error?.code}`).toBe(`${path} 400 MEMBRANE_ERR_API_REQUEST`);
    }
    expect(await alive()).toBe(true);
  });

  it('unknown routes are 404, wrong methods 405 with Allow, and the agent keeps running', async () => {
    const unknown = await raw(node.socket, req('GET', '/v1/nope'));
    expect([unknown.status, unknown.json.error?.code]).toEqual([404, 'MEMBRANE_ERR_API_ROUTE']);
    const method = await raw(node.socket, req('POST', '/v1/status', '{}'));
    expect([method.status, method.json.error?.code]).toEqual([405, 'MEMBRANE_ERR_API_METHOD']);
    expect(method.headers.allow).toBe('GET');
    const policy = await raw(node.socket, req('PATCH', '/v1/policy', '{}'));
    expect(policy.status).toBe(405);
    expect(policy.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'GET', 'PUT']);
    expect(await alive()).toBe(true);
  });

  it('bad JSON, JSON of the wrong shape and bad query values are 400 with the field named', async () => {
    const cases: [Buffer, number, string, string][] = [
      [req('PUT', '/v1/endpoints', '{"name": '), 400, 'MEMBRANE_ERR_API_REQUEST', 'not JSON'],
      [req('PUT', '/v1/endpoints', '[]'), 400, 'MEMBRANE_ERR_ENDPOINT_INVALID', ''],
      [req('PUT', '/v1/services', '"x"'), 400, 'MEMBRANE_ERR_ENDPOINT_INVALID', ''],
      [req('POST', '/v1/policy/trace', '{"src": 5, "dst": {}}'), 400, 'MEMBRANE_ERR_API_REQUEST', 'src'],
      [req('POST', '/v1/policy/trace', '{"src": {"labels": {"org": 1}}, "dst": {"labels": {}}}'), 400, 'MEMBRANE_ERR_API_REQUEST', 'src.labels'],
      [req('POST', '/v1/policy/trace', '{"src": {"labels": {}}, "dst": {"labels": {}}, "dport": "80"}'), 400, 'MEMBRANE_ERR_API_REQUEST', 'dport'],
      [req('POST', '/v1/policy/trace', 'null'), 400, 'MEMBRANE_ERR_API_REQUEST', ''],
      [req('GET', '/v1/flows?filters=%7B'), 400, 'MEMBRANE_ERR_API_REQUEST', 'filters'],
      [req('GET', `/v1/flows?filters=${encodeURIComponent('{"allow": 5}')}`), 400, 'MEMBRANE_ERR_API_REQUEST', 'filters.allow'],
      [req('GET', `/v1/flows?filters=${encodeURIComponent('{"allow": [{"source_ip": ["not-an-ip"]}]}')}`), 400, 'MEMBRANE_ERR_OBSERVE_FILTER', ''],
      [req('GET', '/v1/flows?last=abc'), 400, 'MEMBRANE_ERR_API_REQUEST', 'last'],
      [req('DELETE', '/v1/policy'), 400, 'MEMBRANE_ERR_CLI_USAGE', ''],
    ];
    for (const [request, status, code, mentions] of cases) {
      const r = await raw(node.socket, request);
      const line = request.toString('utf8').split('\r\n')[0];
      expect(`${line} → ${r.status} ${r.json.error?.code}`).toBe(`${line} → ${status} ${code}`);
      expect(r.json.error?.message).toContain(mentions);
    }
    expect(await alive()).toBe(true);
  });

  it('a body over the limit is a 413, declared or chunked, and nothing is written', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 'a');
    const declared = await raw(node.socket, req('PUT', '/v1/policy?file=big.yaml', big));
    expect([declared.status, declared.json.error?.code]).toEqual([413, 'MEMBRANE_ERR_API_TOO_LARGE']);
    const head = 'PUT /v1/endpoints HTTP/1.1\r\nhost: agent\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n';
    const chunk = Buffer.alloc(1024 * 1024, ' ');
    const parts: (string | Buffer)[] = [head];
    for (let i = 0; i < 6; i++) parts.push(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n');
    parts.push('0\r\n\r\n');
    const chunked = await raw(node.socket, parts);
    expect([chunked.status, chunked.json.error?.code]).toEqual([413, 'MEMBRANE_ERR_API_TOO_LARGE']);
    expect(node.policyFiles()).not.toContain('big.yaml');
    expect(await alive()).toBe(true);
  });

  it('a content type the route does not take is a 415', async () => {
    const r = await raw(node.socket, req('PUT', '/v1/endpoints', '{}', { 'content-type': 'text/html' }));
    expect([r.status, r.json.error?.code]).toEqual([415, 'MEMBRANE_ERR_API_MEDIA_TYPE']);
    const imp = await raw(node.socket, req('PUT', '/v1/policy?file=x.yaml', RULE1_L3L4, { 'content-type': 'image/png' }));
    expect([imp.status, imp.json.error?.code]).toEqual([415, 'MEMBRANE_ERR_API_MEDIA_TYPE']);
    expect(node.policyFiles()).not.toContain('x.yaml');
  });

  it('garbage HTTP, oversized headers and a slowloris client get a coded 4xx while others are served', async () => {
    const garbage = await raw(node.socket, 'HELLO THERE\r\n\r\n');
    expect([garbage.status, garbage.json.error?.code]).toEqual([400, 'MEMBRANE_ERR_API_REQUEST']);
    const headers = await raw(node.socket, req('GET', '/v1/status', undefined, { 'x-big': 'b'.repeat(20_000) }));
    expect([headers.status, headers.json.error?.code]).toEqual([431, 'MEMBRANE_ERR_API_TOO_LARGE']);
    // Half a request, then silence: the server must not wait for it forever, nor stop serving.
    const slow = raw(node.socket, 'GET /v1/status HTTP/1.1\r\nhost: agent\r\n', 20_000);
    expect(await alive()).toBe(true);
    const answer = await slow;
    expect([answer.status, answer.json.error?.code]).toEqual([408, 'MEMBRANE_ERR_API_TIMEOUT']);
    expect(await alive()).toBe(true);
  }, 40_000);

  it('an invalid import is a 400 with its problems, through the CLI with its own code, and changes nothing', async () => {
    const r = await raw(node.socket, req('PUT', '/v1/policy?file=broken.yaml', INVALID, { 'content-type': 'application/yaml' }));
    expect([r.status, r.json.error?.code]).toEqual([400, 'MEMBRANE_ERR_POLICY_INVALID']);
    const problems = r.json.error?.details?.problems as { path: string; message: string }[];
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.map((p) => p.path).join(' ')).toContain('port');
    expect(node.policyFiles()).not.toContain('broken.yaml');

    const file = join(node.dir, 'broken.yaml');
    writeFileSync(file, INVALID);
    const cli = node.cli(['policy', 'import', file]);
    expect(cli.status).toBe(1);
    expect(cli.stderr).toMatch(/^Error: invalid policy: broken\.yaml has \d+ problem\(s\) \[MEMBRANE_ERR_POLICY_INVALID\]$/m);
    expect(cli.stderr).toContain('port');
    expect(cli.stderr).not.toContain('MEMBRANE_ERR_AGENT_API');
  });

  it('issue-7 the CLI shows the agent error code and exits with its status', () => {
    const missing = node.cli(['policy', 'delete', 'no-such-policy']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('Error: policy not found: no-such-policy [MEMBRANE_ERR_POLICY_NOT_FOUND]\n');
    const unreachable = node.cli(['--api-socket', join(node.dir, 'nobody.sock'), 'policy', 'get']);
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toContain('[MEMBRANE_ERR_AGENT_UNREACHABLE]');
  });

  it('issue-7 policy delete --all with no policy loaded succeeds', () => {
    expect(node.cli(['policy', 'get', '-o', 'json']).stdout).toContain('"files": []');
    const r = node.cli(['policy', 'delete', '--all']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^No policies to delete, revision \d+\n$/);
  });

  it('issue-7 the revision policy import prints is the one policy get shows once the watcher has settled', async () => {
    const file = join(node.dir, 'rule1.yaml');
    writeFileSync(file, RULE1_L3L4);
    const revisions: number[] = [];
    for (let i = 0; i < 3; i++) {
      const imp = node.cli(['policy', 'import', file]);
      expect(imp.status).toBe(0);
      const printed = Number(/revision (\d+)/.exec(imp.stdout)?.[1]);
      // The watcher reports the file the agent wrote ~100 ms later; give it well over that.
      await new Promise((r) => setTimeout(r, 600));
      const get = node.cli(['policy', 'get']);
      expect(get.stdout).toContain(`Revision: ${printed}\n`);
      revisions.push(printed);
    }
    // Re-importing the same text changes nothing, so the revision stays.
    expect(new Set(revisions).size).toBe(1);
    const del = node.cli(['policy', 'delete', 'rule1']);
    expect(del.stdout).toBe(`Deleted rule1, revision ${(revisions[0] ?? 0) + 1}\n`);
    await new Promise((r) => setTimeout(r, 600));
    expect(node.cli(['policy', 'get']).stdout).toContain(`Revision: ${(revisions[0] ?? 0) + 1}\n`);
  });

  it('delete inside a multi-document file keeps the other documents as written', async () => {
    const file = join(node.dir, 'two.yaml');
    writeFileSync(file, TWO_DOCS);
    expect(node.cli(['policy', 'import', file])).toMatchObject({ status: 0 });
    const del = node.cli(['policy', 'delete', 'doc-a']);
    expect(del.stdout).toMatch(/^Deleted doc-a, revision \d+\n$/);
    const onDisk = readFileSync(join(node.policyDir, 'two.yaml'), 'utf8');
    expect(onDisk).toBe(TWO_DOCS.slice(TWO_DOCS.indexOf('---')));
    const view = await node.client.request<{ files: { file: string; policies: { name: string }[]; problems: unknown[] }[] }>('GET', '/v1/policy');
    expect(view.files.map((f) => [f.file.split('/').pop(), f.policies.map((p) => p.name), f.problems.length])).toEqual([['two.yaml', ['doc-b'], 0]]);
    // The watcher's later look at the rewritten file agrees.
    expect(await eventually(async () => {
      const v = await node.client.request<{ files: { policies: { name: string }[] }[] }>('GET', '/v1/policy');
      return v.files.flatMap((f) => f.policies.map((p) => p.name)).join() === 'doc-b';
    }, 2000)).toBe(true);
    const all = node.cli(['policy', 'delete', '--all']);
    expect(all.stdout).toMatch(/^Deleted doc-b, revision \d+\n$/);
    expect(existsSync(join(node.policyDir, 'two.yaml'))).toBe(false);
  });

  it('every route answers its documented success status', async () => {
    for (const path of ['/v1/healthz', '/v1/status', '/v1/config', '/v1/endpoints', '/v1/services', '/v1/identities', '/v1/policy', '/v1/flows', '/v1/datapath']) {
      const r = await raw(node.socket, req('GET', path));
      expect(`${path} ${r.status}`).toBe(`${path} 200`);
      expect(r.headers['content-type']).toBe('application/json');
    }
    const trace = await raw(node.socket, req('POST', '/v1/policy/trace', JSON.stringify({ src: { labels: { org: 'empire' }, namespace: 'default' }, dst: { labels: { class: 'deathstar' }, namespace: 'default' }, dport: 80, protocol: 'TCP' })));
    expect(trace.status).toBe(200);
    expect(trace.json.verdict).toBe('allowed');
    const gone = await raw(node.socket, req('DELETE', '/v1/endpoints/default/nobody'));
    expect([gone.status, gone.json.error?.code]).toEqual([404, 'MEMBRANE_ERR_ENDPOINT_NOT_FOUND']);
  });

  it('after all of it the agent runs and logged no request as its own fault', async () => {
    expect(await alive()).toBe(true);
    expect(node.agentLog()).not.toContain('"api request failed');
  });
});
