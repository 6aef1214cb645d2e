/**
 * issue-11 Hubble-compatible observer: the running agent serves Hubble's observer API on its
 * root-only hubble.sock, and a gRPC client generated at run time by @grpc/proto-loader (plain
 * grpc-js, as any Hubble client; nothing of src/hubble) from Hubble's published observer.proto
 * when test/fixtures/hubble-api holds it, else from api/v1's, sees what a
 * user would see after the Star Wars scenario: the kernel drop of xwing with its drop reason, the
 * denied PUT and the allowed POST as HTTP L7 flows. `membrane observe` shows the same over gRPC.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, TestNode, eventually, privilegedSkipReason, starwarsLab } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'hubblegrpc';
const P = 'hg';
const SUBNET = '10.229';
const URL_LAND = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const URL_EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';

type Obj = Record<string, unknown>;
interface ObserverStub extends grpc.Client {
  GetFlows(req: Obj): grpc.ClientReadableStream<Obj>;
  ServerStatus(req: Obj, cb: (err: grpc.ServiceError | null, res: Obj) => void): void;
  GetNodes(req: Obj, cb: (err: grpc.ServiceError | null, res: Obj) => void): void;
}

/** Hubble's published protos when test/fixtures/hubble-api holds them (see its README), else ours. */
const PROTO_ROOT = existsSync(join(ROOT, 'test/fixtures/hubble-api/observer/observer.proto')) ? join(ROOT, 'test/fixtures/hubble-api') : join(ROOT, 'api', 'v1');

function observerStub(address: string): ObserverStub {
  const root = PROTO_ROOT;
  const def = protoLoader.loadSync(join(root, 'observer', 'observer.proto'), { includeDirs: [root], keepCase: true, enums: String, longs: Number });
  const Observer = (grpc.loadPackageDefinition(def) as unknown as { observer: { Observer: new (a: string, c: grpc.ChannelCredentials) => ObserverStub } }).observer.Observer;
  return new Observer(address, grpc.credentials.createInsecure());
}

function flows(stub: ObserverStub, req: Obj): Promise<Obj[]> {
  return new Promise((resolve, reject) => {
    const out: Obj[] = [];
    const call = stub.GetFlows(req);
    call.on('data', (m: Obj) => {
      if (m.flow) out.push(m.flow as Obj);
    });
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
}

const unary = (stub: ObserverStub, m: 'ServerStatus' | 'GetNodes'): Promise<Obj> =>
  new Promise((resolve, reject) => stub[m]({}, (err, res) => (err ? reject(err) : resolve(res))));

const http = (f: Obj): Obj => ((f.l7 as Obj | undefined)?.http as Obj | undefined) ?? {};
const pod = (f: Obj, side: 'source' | 'destination'): string => ((f[side] as Obj | undefined)?.pod_name as string | undefined) ?? '';

describe.skipIf(skip !== null)('issue-11 Hubble observer API of the running agent' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  let stub: ObserverStub;
  let socket: string;

  beforeAll(async () => {
    TestNode.sweep(ID, [`${P}-ds`, `${P}-tie`, `${P}-xw`]);
    node = new TestNode(ID);
    await node.startAgent();
    await node.labUp(starwarsLab(P, SUBNET));
    const imp = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/starwars/sw_l3_l4_l7_policy.yaml')]);
    expect(imp.stdout).toContain('Imported rule1');
    expect(node.curl(`${P}-tie`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    expect(node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status).toBe(403);
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND, 1).timedOut).toBe(true);
    socket = join(node.dir, 'hubble.sock');
    stub = observerStub(`unix://${socket}`);
  }, 60_000);

  afterAll(async () => {
    stub?.close();
    await node?.cleanup();
  });

  it('serves on hubble.sock beside the API socket, readable by root only', () => {
    const st = statSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('GetFlows with a filter: the kernel drop of xwing carries its drop reason, the denied PUT its HTTP fields', async () => {
    const dropped = await flows(stub, { number: 100, whitelist: [{ verdict: ['DROPPED'], destination_pod: [`default/${P}-ds`] }] });
    const kernel = dropped.find((f) => f.Type === 'L3_L4' && pod(f, 'source') === `${P}-xw`);
    expect(kernel).toMatchObject({ verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', drop_reason: 133, traffic_direction: 'INGRESS', node_name: node.netns });
    expect((kernel?.l4 as Obj).TCP).toMatchObject({ destination_port: 80, flags: { SYN: true } });
    expect(kernel?.destination).toMatchObject({ namespace: 'default', pod_name: `${P}-ds`, labels: expect.arrayContaining(['k8s:class=deathstar', 'k8s:org=empire']) });
    const put = dropped.find((f) => f.Type === 'L7');
    expect(put).toMatchObject({ verdict: 'DROPPED', is_reply: { value: false }, l7: { type: 'REQUEST' }, Summary: `HTTP/1.1 PUT ${URL_EXHAUST}` });
    expect(http(put as Obj)).toMatchObject({ method: 'PUT', url: URL_EXHAUST, protocol: 'HTTP/1.1' });
    expect(pod(put as Obj, 'source')).toBe(`${P}-tie`);
    expect(dropped.every((f) => f.verdict === 'DROPPED' && pod(f, 'destination') === `${P}-ds`)).toBe(true);
  });

  it('GetFlows: the allowed POST as an L7 request and its 200 response; the blacklist takes PUT out', async () => {
    const l7 = await flows(stub, { number: 100, whitelist: [{ protocol: ['http'] }], blacklist: [{ http_method: ['PUT'] }] });
    expect(l7.length).toBeGreaterThanOrEqual(2);
    expect(l7.some((f) => http(f).method === 'PUT')).toBe(false);
    const req = l7.find((f) => (f.l7 as Obj).type === 'REQUEST');
    expect(req).toMatchObject({ verdict: 'FORWARDED', Type: 'L7', event_type: { type: 129 } });
    expect(http(req as Obj)).toMatchObject({ method: 'POST', url: URL_LAND });
    const res = l7.find((f) => (f.l7 as Obj).type === 'RESPONSE');
    expect(res).toMatchObject({ verdict: 'FORWARDED', is_reply: { value: true } });
    expect(http(res as Obj)).toMatchObject({ code: 200, method: 'POST', url: URL_LAND });
    // OR of filters: HTTP flows, or flows from xwing.
    const either = await flows(stub, { number: 200, whitelist: [{ protocol: ['http'] }, { source_pod: [`default/${P}-xw`] }] });
    expect(either.some((f) => f.Type === 'L3_L4' && pod(f, 'source') === `${P}-xw`)).toBe(true);
    expect(either.some((f) => f.Type === 'L7')).toBe(true);
    expect(either.every((f) => f.Type === 'L7' || pod(f, 'source') === `${P}-xw`)).toBe(true);
  });

  it('GetFlows with follow streams a new denied request as it happens', async () => {
    const call = stub.GetFlows({ follow: true, whitelist: [{ http_method: ['PUT'], verdict: ['DROPPED'] }] });
    const got: Obj[] = [];
    const ended = new Promise<void>((resolve) => call.on('error', () => resolve()));
    call.on('data', (m: Obj) => m.flow && got.push(m.flow as Obj));
    try {
      // number 0 with follow: only new flows, none of the earlier PUT.
      await new Promise((r) => setTimeout(r, 300));
      expect(got).toEqual([]);
      expect(node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status).toBe(403);
      expect(await eventually(() => got.length === 1, 5000)).toBe(true);
      expect(http(got[0] as Obj)).toMatchObject({ method: 'PUT', url: URL_EXHAUST });
    } finally {
      call.cancel();
    }
    await ended;
  });

  it('ServerStatus and GetNodes describe the agent\'s flow ring', async () => {
    const s = await unary(stub, 'ServerStatus');
    expect(s.max_flows).toBe(4096);
    expect(s.num_flows as number).toBeGreaterThan(0);
    expect(s.seen_flows as number).toBeGreaterThanOrEqual(s.num_flows as number);
    expect(s.uptime_ns as number).toBeGreaterThan(0);
    const { nodes } = (await unary(stub, 'GetNodes')) as { nodes: Obj[] };
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ name: node.netns, state: 'NODE_CONNECTED', address: `unix://${socket}`, max_flows: 4096 });
  });

  it('membrane observe --pod … --protocol http and --verdict DROPPED print the demo\'s lines over gRPC', () => {
    const httpFlows = node.cli(['observe', '--last', '100', '--pod', `default/${P}-ds`, '--protocol', 'http']);
    expect(httpFlows.stderr).toBe('');
    expect(httpFlows.status).toBe(0);
    expect(httpFlows.stdout).toMatch(/default\/hg-tie:\d+ \(ID:\d+\) -> default\/hg-ds:80 \(ID:\d+\) http-request DROPPED \(HTTP\/1\.1 PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)/);
    expect(httpFlows.stdout).toMatch(/http-request FORWARDED \(HTTP\/1\.1 POST http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/request-landing\)/);
    expect(httpFlows.stdout).toMatch(/<- default\/hg-ds:80 \(ID:\d+\) http-response FORWARDED \(HTTP\/1\.1 403 \d+ms \(PUT /);
    const drops = node.cli(['observe', '--last', '100', '--verdict', 'DROPPED']);
    expect(drops.status).toBe(0);
    expect(drops.stdout).toMatch(/default\/hg-xw:\d+ \(ID:\d+\) <> default\/hg-ds:80 \(ID:\d+\) Policy denied DROPPED \(TCP Flags: SYN\)/);
    expect(drops.stdout.split('\n').filter(Boolean).every((l) => / DROPPED | DENIED /.test(l))).toBe(true);
  });

  it('membrane observe --follow streams over gRPC', async () => {
    const follow = spawn(process.execPath, [CLI, '--api-socket', node.socket, 'observe', '--follow', '--last', '1', '--http-method', 'PUT'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => follow.on('exit', (code) => resolve(code)));
    try {
      expect(await eventually(() => out.includes('exhaust-port'), 10_000)).toBe(true);
      const drops = (): number => out.split('\n').filter((l) => l.includes('http-request DROPPED')).length;
      const before = drops();
      expect(node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status).toBe(403);
      expect(await eventually(() => drops() > before, 5000)).toBe(true);
      expect(out).not.toContain('POST');
    } finally {
      follow.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
