/**
 * issue-9 proxy workers: the HTTP and DNS proxies in 2 worker threads, each with its own
 * transparent listeners in one SO_REUSEPORT group per port, against the real kernel datapath
 * (bpf_sk_assign to a reuseport listener, Linux ≥ 6.5). Star Wars pods plus a kube-dns pod
 * (dnsmasq), curl and dig in the pods.
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNode, eventually, privilegedSkipReason, RULE1_L7 } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'proxyworkers';
const P = 'pwk';
const SUBNET = '10.223';
const PODS = [`${P}-ds`, `${P}-tie`, `${P}-xw`, `${P}-dns`];
const URL_LAND = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const URL_EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';
const URL_GET = 'http://deathstar.default.svc.cluster.local/v1';

const LAB = `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: ${P}-lab
spec:
  subnet: "${SUBNET}"
  pods:
    - name: ${P}-ds
      labels: {org: empire, class: deathstar}
      serve: {app: starwars, port: 80}
    - name: ${P}-tie
      labels: {org: empire, class: tiefighter}
    - name: ${P}-xw
      labels: {org: alliance, class: xwing}
    - name: ${P}-dns
      namespace: kube-system
      labels: {k8s-app: kube-dns}
      serve:
        app: dns
        port: 53
        dns:
          ttl: 60
          zones: [cluster.local, example.com]
          records:
            - {name: deathstar.default.svc.cluster.local, a: ["${SUBNET}.1.2"]}
            - {name: www.example.com, a: ["${SUBNET}.2.2"]}
  hosts:
    deathstar.default.svc.cluster.local: ${P}-ds
  services:
    - {name: deathstar, namespace: default, selector: {org: empire, class: deathstar}}
`;

/** The tiefighter may ask kube-dns only for cluster.local names (DNS proxy) and reach the deathstar. */
const TIE_EGRESS = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: tie-egress
spec:
  endpointSelector:
    matchLabels: {class: tiefighter}
  egress:
    - toEndpoints:
        - matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, k8s-app: kube-dns}
      toPorts:
        - ports: [{port: "53", protocol: ANY}]
          rules:
            dns: [{matchPattern: "*.cluster.local"}, {matchPattern: "*.*.*.cluster.local"}]
    - toEndpoints:
        - matchLabels: {class: deathstar}
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
`;

/** rule1 plus GET /v1 for the empire. */
const RULE1_WITH_GET = RULE1_L7.replace(
  '              - method: "POST"\n                path: "/v1/request-landing"',
  '              - method: "POST"\n                path: "/v1/request-landing"\n              - method: "GET"\n                path: "/v1"',
);

interface WorkerStatus {
  index: number;
  state: string;
  restarts: number;
  counters: { http: { requests: number; denied: number; forwarded: number }; dns: { queries: number; denied: number }; droppedFlows: number; droppedLines: number } | null;
}
interface Status {
  proxy: { requests: number; denied: number; forwarded: number };
  dnsProxy: { queries: number; denied: number };
  proxyWorkers: WorkerStatus[];
  datapath: Record<string, number>;
}

/** `n` curls one after another in `pod`, each its own connection: their status codes. */
function curlLoop(node: TestNode, pod: string, method: string, url: string, n: number): string[] {
  const r = spawnSync('ip', ['netns', 'exec', pod, 'sh', '-c', `for i in $(seq ${n}); do curl -s -o /dev/null --max-time 2 -w '%{http_code}\\n' -X ${method} ${url}; done`], {
    encoding: 'utf8',
  });
  return r.stdout.trim().split('\n');
}

function dig(pod: string, server: string, name: string): string {
  const r = spawnSync('ip', ['netns', 'exec', pod, 'dig', `@${server}`, '+tries=1', '+time=2', '+noall', '+comments', name, 'A'], { encoding: 'utf8' });
  return /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? `no answer (${r.status}): ${r.stdout}${r.stderr}`;
}

const countOf = (codes: string[], code: string): number => codes.filter((c) => c === code).length;

describe.skipIf(skip !== null)('issue-9 proxy workers' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  let dnsIp: string;
  const status = async (): Promise<Status> => node.client.request<Status>('GET', '/v1/status');

  beforeAll(async () => {
    TestNode.sweep(ID, PODS);
    node = new TestNode(ID);
    await node.startAgent(['--proxy-workers', '2']);
    await node.labUp(LAB);
    dnsIp = node.podIp(`${P}-dns`);
    node.writePolicy('rule1.yaml', RULE1_L7);
    node.writePolicy('tie-egress.yaml', TIE_EGRESS);
    expect(await eventually(() => node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status === 403, 10_000)).toBe(true);
  }, 60_000);

  afterAll(async () => {
    await node?.cleanup();
  });

  it('two workers, both ready, each serving its share of many connections from one pod; policy enforced: 200 / 403 / kernel drop / DNS REFUSED', async () => {
    // Worker 0 starts first (it ends a restart's gap), worker 1 once it serves.
    expect(await eventually(async () => (await status()).proxyWorkers.every((w) => w.state === 'ready'), 10_000)).toBe(true);
    const s0 = await status();
    expect(s0.proxyWorkers.map((w) => [w.index, w.state])).toEqual([[0, 'ready'], [1, 'ready']]);
    const before = s0.proxyWorkers.map((w) => w.counters?.http.requests ?? 0);

    const codes = curlLoop(node, `${P}-tie`, 'POST', URL_LAND, 60);
    expect(codes).toEqual(Array(60).fill('200'));
    const s1 = await status();
    const served = s1.proxyWorkers.map((w, i) => (w.counters?.http.requests ?? 0) - before[i]!);
    // 60 connections hashed over a group of 2: both take some (all on one: 2^-59).
    expect(served.every((n) => n > 0), `per worker: ${served.join(', ')}`).toBe(true);
    expect(served.reduce((a, b) => a + b, 0)).toBe(60);
    // The summed counters keep the in-process shape.
    expect(s1.proxy.requests).toBe(s1.proxyWorkers.reduce((a, w) => a + (w.counters?.http.requests ?? 0), 0));

    const denied = node.curl(`${P}-tie`, 'PUT', URL_EXHAUST);
    expect(denied).toMatchObject({ status: 403, body: 'Access denied\r\n' });
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND, 1).timedOut).toBe(true);

    expect(dig(`${P}-tie`, dnsIp, 'deathstar.default.svc.cluster.local')).toBe('NOERROR');
    // dnsmasq would answer NXDOMAIN for example.com names: REFUSED is the DNS proxy's.
    expect(dig(`${P}-tie`, dnsIp, 'nope.example.com')).toBe('REFUSED');
    const s2 = await status();
    expect(s2.dnsProxy.denied).toBeGreaterThanOrEqual(1);

    // Flows and access-log lines came back from the workers to the agent.
    expect(await eventually(() => node.accessLog().filter((l) => JSON.stringify(l).includes('request-landing')).length >= 60, 5000)).toBe(true);
    const flows = node.cli(['observe', '--last', '1000', '-o', 'json']);
    expect(flows.stdout).toContain('/v1/exhaust-port');
    // Nothing was dropped for want of a proxy socket (DROP_PROXY_LOOKUP_FAILED 178 / SET_FAILED 179).
    expect(s2.datapath.drop_178 ?? 0).toBe(0);
    expect(s2.datapath.drop_179 ?? 0).toBe(0);
    expect(s2.proxyWorkers.every((w) => w.counters?.droppedFlows === 0 && w.counters.droppedLines === 0)).toBe(true);
  }, 60_000);

  it('a policy change reaches the workers while requests are in flight: GET /v1 goes from 403 to 200, nothing fails', async () => {
    const script = `for i in $(seq 150); do curl -s -o /dev/null --max-time 2 -w '%{http_code}\\n' ${URL_GET}; sleep 0.02; done`;
    const loop = spawn('ip', ['netns', 'exec', `${P}-tie`, 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    loop.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<void>((resolve) => loop.on('exit', () => resolve()));
    expect(await eventually(() => out.split('\n').filter(Boolean).length >= 10, 10_000)).toBe(true);
    node.writePolicy('rule1.yaml', RULE1_WITH_GET);
    await done;
    const codes = out.trim().split('\n');
    expect(codes[0]).toBe('403');
    expect(codes.at(-1)).toBe('200');
    // Every request got a verdict (no reset, no timeout) across the change.
    expect(codes.filter((c) => c !== '200' && c !== '403')).toEqual([]);
    expect(codes.slice(-20)).toEqual(Array(20).fill('200'));
  }, 60_000);

  it('a killed worker is restarted (logged, counted); the other serves meanwhile and both serve after', async () => {
    await node.client.request('POST', '/v1/proxy-workers/0/kill');
    // Meanwhile: every new connection lands on the remaining listener of the group.
    const during = curlLoop(node, `${P}-tie`, 'POST', URL_LAND, 10);
    expect(countOf(during, '200')).toBeGreaterThan(0);
    expect(
      await eventually(async () => {
        const w = (await status()).proxyWorkers[0]!;
        return w.state === 'ready' && w.restarts === 1;
      }, 10_000),
    ).toBe(true);
    expect(node.agentLog()).toContain('proxy worker exited; restarting it');

    const before = (await status()).proxyWorkers.map((w) => w.counters?.http.requests ?? 0);
    const after = curlLoop(node, `${P}-tie`, 'POST', URL_LAND, 40);
    expect(after).toEqual(Array(40).fill('200'));
    const s = await status();
    const served = s.proxyWorkers.map((w, i) => (w.counters?.http.requests ?? 0) - before[i]!);
    expect(served.every((n) => n > 0), `per worker: ${served.join(', ')}`).toBe(true);
    // The restarted worker got the current policy (its snapshot): GET /v1 is allowed, PUT denied.
    expect(curlLoop(node, `${P}-tie`, 'GET', URL_GET, 10)).toEqual(Array(10).fill('200'));
    expect(curlLoop(node, `${P}-tie`, 'PUT', URL_EXHAUST, 10)).toEqual(Array(10).fill('403'));
    expect(dig(`${P}-tie`, dnsIp, 'nope.example.com')).toBe('REFUSED');
  }, 60_000);

  it('local answers that are no policy decision (501 CONNECT, 400 malformed, 307 escaped slash) come back from the workers as flows', async () => {
    const script = [
      'import socket, sys',
      `for data in [b'CONNECT deathstar:443 HTTP/1.1\\r\\nHost: deathstar:443\\r\\n\\r\\n', b'GET /v1 HTTP/1.1\\r\\nHost: deathstar\\r\\nBad Header: x\\r\\n\\r\\n', b'POST /v1/request-landing%2f HTTP/1.1\\r\\nHost: deathstar.default.svc.cluster.local\\r\\nContent-Length: 0\\r\\n\\r\\n']:`,
      `    s = socket.create_connection((sys.argv[1], 80), timeout=3)`,
      '    s.sendall(data)',
      `    print(s.recv(200).split(b'\\r\\n')[0].decode())`,
      '    s.close()',
    ].join('\n');
    const r = spawnSync('ip', ['netns', 'exec', `${P}-tie`, 'python3', '-c', script, node.podIp(`${P}-ds`)], { encoding: 'utf8' });
    expect(r.stdout.trim().split('\n'), r.stderr).toEqual(['HTTP/1.1 501 Not Implemented', 'HTTP/1.1 400 Bad Request', 'HTTP/1.1 307 Temporary Redirect']);
    const observed = (): string[] =>
      node
        .cli(['observe', '--last', '1000', '--pod', `default/${P}-tie`, '--protocol', 'http', '-o', 'json'])
        .stdout.split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { flow?: { verdict: string; Summary: string } } & { verdict: string; Summary: string })
        .map((f) => f.flow ?? f)
        // The malformed request's URL has the original destination: no Host was read.
        .filter((f) => f.Summary.includes('CONNECT') || f.Summary.includes('%2f') || f.Summary.includes(`http://${node.podIp(`${P}-ds`)}/`))
        .map((f) => `${f.verdict} ${f.Summary.replace(/ \d+ms /, ' Nms ')}`);
    await eventually(() => observed().length >= 6, 5000);
    // Each connection may be served by another worker, whose batch reaches the agent in its own
    // time: the flows of one request are in order, the requests need not be.
    expect([...observed()].sort()).toEqual(
      [
        'ERROR HTTP/1.1 CONNECT deathstar:443',
        'ERROR HTTP/1.1 501 Nms (CONNECT deathstar:443)',
        `ERROR HTTP/1.1 GET http://${node.podIp(`${P}-ds`)}/v1`,
        `ERROR HTTP/1.1 400 Nms (GET http://${node.podIp(`${P}-ds`)}/v1)`,
        'FORWARDED HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing%2f',
        'FORWARDED HTTP/1.1 307 Nms (POST http://deathstar.default.svc.cluster.local/v1/request-landing%2f)',
      ].sort(),
    );
    const list = observed();
    // Each request named so that no other's line contains it ('/v1' alone is in the %2f one too).
    for (const [ask, answer] of [['CONNECT deathstar:443', '501'], [`GET http://${node.podIp(`${P}-ds`)}/v1`, '400'], ['%2f', '307']] as const) {
      const i = list.findIndex((l) => l.includes(ask) && !l.includes(`${answer} Nms`));
      expect(list[i + 1], `the answer follows the request (${ask})`).toContain(`${answer} Nms`);
    }
  }, 60_000);
});
