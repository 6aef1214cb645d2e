/**
 * HTTP through the real transparent path vs its peers, in one run, interleaved (root: network
 * namespaces, BPF maps). The node (bench/node.ts): the Membrane agent in `mbb-http`, two pods:
 *
 *   bhp-client  (org=empire, class=tiefighter)  wrk
 *   bhp-server  (org=empire, class=deathstar)   nginx backend on :80 and :8080 (HTTP/1.1), :81 and :8081 (h2c)
 *
 *   kernel       client ──────────────────────────────────► server:8080   L3/L4 rule only, no proxy
 *   membrane-l7  client ──► tc redirect ► Membrane proxy ──► server:80     HTTP rule POST /v1/request-landing,
 *                                                                          access log and flows on
 *   haproxy      client ──► HAProxy 2.6 (node netns, 1 thread) ──► server:8080   same method/path ACL
 *   nginx        client ──► nginx reverse proxy (node netns, 1 worker) ──► server:8080   same ACL
 *
 * With an agent that has `--proxy-workers`, Membrane is measured with 1 and 2 workers (the agent
 * restarts between them). Metrics per variant and run:
 *
 *   saturated req/s   wrk -t2 -c64, no pacing
 *   p99 at 2000 req/s wrk -t1 -c32 paced by lib/wrk.ts's delay() script; the achieved rate is kept
 *   CPU µs/request    utime+stime of the proxy's process tree over the 2000 req/s run ÷ requests
 *                     (/proc/PID/stat; Membrane: the agent, all threads and child processes)
 *
 * HTTP/2: h2load (h2c, prior knowledge) at saturation, kernel only (:8081) vs Membrane (:81, the
 * same rule, h2c upstream) vs HAProxy (`bind … proto h2`, h2c to :8081) vs nginx (`listen … http2`,
 * HTTP/1.1 keep-alive to :8080: nginx 1.22 has no HTTP/2 upstream), each after the ACL check over
 * HTTP/2 (allowed 200, another method or path 403); a path that fails it is reported, not measured.
 *
 * Observability overhead (issue 11; alone: `--only http:obs`): Membrane L7 (1 worker) at 2000
 * req/s, a fresh agent per configuration and round, brought to the same state before it is
 * measured: tracing off (twice: an A/A pair, the block's own noise floor); tracing to a local
 * OTLP/HTTP sink (lib/obs-sink.ts, node namespace, loopback) with parentbased_traceidratio at 1.0
 * and 0.01; metrics (`--prometheus-serve-addr`) scraped every second; 1% tracing and metrics
 * together. CPU µs/request of the agent's tree and of the proxy worker thread (schedstat), each
 * as paired ratios to tracing off of the same round with a 90% sign-test interval: a 5% target is
 * met or missed only when the interval is on one side of it, else reported as not resolved.
 *
 * Isolation: Membrane's p99 at 2000 req/s quiet vs while 200 policy files change (written,
 * changed, removed in the agent's policy directory) and 1,000 endpoints (links in the node
 * namespace, veth pairs) are registered and deregistered through the agent API (alone: `--only
 * http:iso`, 1 worker). During each churn run the CPU of the agent's threads and of the
 * machine's busiest processes is noted: what competed with the proxy for the cores.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_NODE, CLI, nodeVersion, ProbedNode as BenchNode } from './node.js';
import { AgentClient } from '../src/cli/client.js';
import { backendNginxConf, haproxyConf, proxyNginxConf, RULE } from './lib/http-peers.js';
import { profileLine, summariseProfile } from './lib/profile.js';
import { ThreadCpu, TreeCpu } from './lib/proc.js';
import { row, type BenchContext, type BenchResult, type BenchRow, type Benchmark, type BenchTable, type BenchTarget } from './lib/types.js';
import { h2load, stopH2load, type H2Result } from './lib/h2load.js';
import type { SinkStats } from './lib/obs-sink.js';
import { stopWrk, wrk, wrkScripts, type WrkResult } from './lib/wrk.js';

const NETNS = 'mbb-http';
const SUBNET = '10.241';
/** Churn endpoints' addresses: in the ipcache only, never on a link that carries a packet. */
const CHURN_NET = '10.242';
const POD = { client: 'bhp-client', server: 'bhp-server' } as const;
const PORT = { l7: 80, l4: 8080, haproxy: 18080, nginx: 18081, h2l7: 81, h2l4: 8081, h2haproxy: 18082, h2nginx: 18083, otlp: 4318, metrics: 9962 } as const;
/** lib/obs-sink.ts as built next to this file (dist-bench/bench/lib/obs-sink.js). */
const OBS_SINK = fileURLToPath(new URL('./lib/obs-sink.js', import.meta.url));
const RATE = 2000;
/** HAProxy's figures in issue 9's table, on the machine its absolute targets were set on. */
const ISSUE_HAPROXY = { rps: 72_000, cpuUs: 40 } as const;
const CHURN_POLICIES = 200;
const CHURN_ENDPOINTS = 1000;
/** Endpoint API calls the churn keeps in flight. */
const CHURN_LANES = 16;

const LAB_SPEC = `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: bhp-lab
spec:
  subnet: "${SUBNET}"
  pods:
    - {name: ${POD.client}, namespace: default, labels: {org: empire, class: tiefighter}}
    - {name: ${POD.server}, namespace: default, labels: {org: empire, class: deathstar}}
`;

/**
 * The Star Wars rule on :80 and :81 (HTTP/2) through the proxy; :8080 and :8081 (HTTP/2) at L3/L4
 * only, from the empire, and from the node (the peers).
 */
const SERVER_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-http-deathstar, namespace: default}
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
    - fromEndpoints: [{matchLabels: {org: empire}}]
      toPorts:
        - ports: [{port: "${PORT.l7}", protocol: TCP}]
          rules:
            http:
              - method: "${RULE.method}"
                path: "${RULE.path}"
        - ports: [{port: "${PORT.h2l7}", protocol: TCP}]
          rules:
            http:
              - method: "${RULE.method}"
                path: "${RULE.path}"
    - fromEndpoints: [{matchLabels: {org: empire}}]
      toPorts:
        - ports: [{port: "${PORT.l4}", protocol: TCP}, {port: "${PORT.h2l4}", protocol: TCP}]
    - fromEntities: [host]
      toPorts:
        - ports: [{port: "${PORT.l4}", protocol: TCP}, {port: "${PORT.h2l4}", protocol: TCP}]
`;

/** Churn policy `i` (generation `gen`): selects a tenth of the churn endpoints, one port each. */
function churnPolicy(i: number, gen: number): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: churn-${i}, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: churn-${i % 10}}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: churn-${(i + 1) % 10}}}]
      toPorts:
        - ports: [{port: "${1000 + ((i * 7 + gen) % 5000)}", protocol: TCP}]
`;
}

type Variant = 'kernel' | 'haproxy' | 'nginx' | `membrane-w${number}` | 'membrane-l7';

interface Measured {
  sat: WrkResult[];
  satCpu: number[];
  paced: WrkResult[];
  cpu: number[];
}

/** Whether this agent has `--proxy-workers` (being added; measured with 1 and 2 when it does). */
function hasProxyWorkers(): boolean {
  const r = spawnSync(process.execPath, [CLI, 'agent', '--help'], { encoding: 'utf8' });
  return /--proxy-workers\b/.test(r.stdout);
}

/** Busy and total jiffies of the whole machine (/proc/stat), for its idle share during a run. */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

function curlCode(pod: string, method: string, url: string, h2 = false): string {
  const args = ['netns', 'exec', pod, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', '-X', method, '-H', 'Content-Length: 0', ...(h2 ? ['--http2-prior-knowledge'] : []), url];
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return r.stdout.trim() || `exit ${r.status}`;
}

const median = (xs: readonly number[]): number => row('', '', '', '', xs).median;
const k = (n: number): string => (!Number.isFinite(n) ? '—' : n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
const ms = (n: number): string => (!Number.isFinite(n) ? '—' : n < 1 ? n.toFixed(2) : n.toFixed(1));
const us = (n: number): string => (!Number.isFinite(n) ? '—' : n.toFixed(0));
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—');
function spread(xs: readonly number[], f: (n: number) => string): string {
  const r = row('', '', '', '', xs);
  return xs.length > 1 ? `${f(r.median)} (${f(r.min)}–${f(r.max)})` : f(r.median);
}

class HttpBench {
  readonly node: BenchNode;
  readonly agentArgs: string[] = [];
  workersNow: number | null = null;
  scripts!: { saturate: string; paced: string };
  haproxyPid = 0;
  nginxPid = 0;
  readonly notes: string[] = [];

  readonly ctx: BenchContext;

  constructor(ctx: BenchContext) {
    this.ctx = ctx;
    BenchNode.sweep({ netns: NETNS, pods: Object.values(POD) });
    this.node = new BenchNode({ netns: NETNS, pods: Object.values(POD), labSpec: LAB_SPEC, policies: { 'deathstar.yaml': SERVER_POLICY } });
  }

  get seconds(): { sat: number; paced: number; warm: number } {
    return this.ctx.quick ? { sat: 3, paced: 4, warm: 1 } : { sat: 10, paced: 10, warm: 2 };
  }

  /** The client's gateway: a node address, where the peers listen. */
  get gw(): string {
    return this.node.podIp(POD.client).replace(/\.2$/, '.1');
  }

  url(v: Variant): string {
    const server = this.node.podIp(POD.server);
    const gw = this.gw;
    if (v === 'kernel') return `http://${server}:${PORT.l4}${RULE.path}`;
    if (v === 'haproxy') return `http://${gw}:${PORT.haproxy}${RULE.path}`;
    if (v === 'nginx') return `http://${gw}:${PORT.nginx}${RULE.path}`;
    return `http://${server}:${PORT.l7}${RULE.path}`;
  }

  async setup(): Promise<void> {
    const { node } = this;
    await node.startAgent(this.agentArgs);
    await node.labUp();
    const dir = node.dir;
    mkdirSync(join(dir, 'nginx-body'), { recursive: true });
    mkdirSync(join(dir, 'nginx-proxy'), { recursive: true });
    this.scripts = wrkScripts(dir, { method: RULE.method, path: RULE.path, body: '' });
    const server = node.podIp(POD.server);
    writeFileSync(join(dir, 'backend.conf'), backendNginxConf(dir, [PORT.l7, PORT.l4], [PORT.h2l7, PORT.h2l4]));
    node.serve(POD.server, ['nginx', '-e', 'stderr', '-p', dir, '-c', join(dir, 'backend.conf')], 'backend.log');
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConf(`0.0.0.0:${PORT.haproxy}`, `${server}:${PORT.l4}`, { listen: `0.0.0.0:${PORT.h2haproxy}`, backend: `${server}:${PORT.h2l4}` }));
    this.haproxyPid = node.serve(NETNS, ['haproxy', '-db', '-f', join(dir, 'haproxy.cfg')], 'haproxy.log').pid ?? 0;
    writeFileSync(join(dir, 'proxy-nginx.conf'), proxyNginxConf(dir, `0.0.0.0:${PORT.nginx}`, `${server}:${PORT.l4}`, `0.0.0.0:${PORT.h2nginx}`));
    this.nginxPid = node.serve(NETNS, ['nginx', '-e', 'stderr', '-p', dir, '-c', join(dir, 'proxy-nginx.conf')], 'proxy-nginx.log').pid ?? 0;
    node.serve(NETNS, [process.execPath, OBS_SINK, String(PORT.otlp), `http://127.0.0.1:${PORT.metrics}/metrics`], 'obs-sink.log');
    for (const v of ['kernel', 'haproxy', 'nginx', 'membrane-l7'] as const) await this.ready(v);
    await node.listening(NETNS, PORT.otlp);
    this.aclCheck();
  }

  /** A request to the observability sink (lib/obs-sink.ts) in the node namespace; its body. */
  sink(method: 'GET' | 'POST', path: string): string {
    const r = spawnSync('ip', ['netns', 'exec', NETNS, 'curl', '-sf', '--max-time', '3', '-X', method, `http://127.0.0.1:${PORT.otlp}${path}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`observability sink ${method} ${path} failed (curl ${r.status}); its log: ${this.node.log('obs-sink.log').slice(-500)}`);
    return r.stdout;
  }

  sinkStats(): SinkStats {
    return JSON.parse(this.sink('GET', '/stats')) as SinkStats;
  }

  /** The agent restarted with `args` (and `env`), serving the allowed request again. */
  async restart(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<void> {
    await this.node.stopAgent();
    await this.node.startAgent(args, env);
    await this.ready('membrane-l7');
  }

  /** Waits until `v` answers the allowed request with 200 (policy written, servers listening). */
  async ready(v: Variant): Promise<void> {
    const deadline = Date.now() + 30_000;
    let code = '';
    while (Date.now() < deadline) {
      code = curlCode(POD.client, RULE.method, this.url(v));
      if (code === '200') return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${v} (${this.url(v)}) does not answer 200 but ${code}; logs in ${this.node.dir} (MEMBRANE_BENCH_KEEP_LOGS=1 keeps them)`);
  }

  /** Each proxy enforces the same rule: the allowed request 200, another method or path 403. */
  aclCheck(): void {
    const lines: string[] = [];
    for (const v of ['membrane-l7', 'haproxy', 'nginx'] as const) {
      const u = this.url(v);
      const got = [curlCode(POD.client, RULE.method, u), curlCode(POD.client, 'GET', u), curlCode(POD.client, RULE.method, u.replace(RULE.path, '/v1/exhaust-port'))];
      if (got.join() !== '200,403,403') throw new Error(`${v} does not enforce ${RULE.method} ${RULE.path}: allowed/other method/other path gave ${got.join('/')}, want 200/403/403`);
      lines.push(`${v} ${got.join('/')}`);
    }
    this.notes.push(`ACL check before measuring (allowed request / GET / other path): ${lines.join('; ')}.`);
  }

  /** The agent with `--proxy-workers n` (restarted when it runs with another count). */
  async workers(n: number): Promise<void> {
    if (this.workersNow === n) return;
    this.ctx.log(`agent with --proxy-workers ${n}`);
    this.agentArgs.splice(0, this.agentArgs.length, '--proxy-workers', String(n));
    await this.restart(this.agentArgs);
    this.workersNow = n;
    await this.saturate('membrane-l7', this.seconds.warm); // a restarted agent is cold: warm it as at the start
  }

  pidOf(v: Variant): number {
    if (v === 'haproxy') return this.haproxyPid;
    if (v === 'nginx') return this.nginxPid;
    if (v === 'kernel') return 0;
    return this.node.agent?.pid ?? 0;
  }

  async saturate(v: Variant, seconds: number): Promise<{ r: WrkResult; cpuUs: number; machineBusy: number }> {
    const pid = this.pidOf(v);
    const cpu = pid ? new TreeCpu(pid) : null;
    const t0 = machineTicks();
    cpu?.start();
    const r = await wrk({ netns: POD.client, url: this.url(v), script: this.scripts.saturate, threads: 2, connections: 64, seconds });
    const used = cpu ? cpu.stop() : NaN;
    const t1 = machineTicks();
    return { r, cpuUs: used / Math.max(1, r.requests), machineBusy: (t1.busy - t0.busy) / Math.max(1, t1.total - t0.total) };
  }

  async paced(v: Variant, seconds: number): Promise<{ r: WrkResult; cpuUs: number }> {
    const pid = this.pidOf(v);
    const cpu = pid ? new TreeCpu(pid) : null;
    cpu?.start();
    const r = await wrk({ netns: POD.client, url: this.url(v), script: this.scripts.paced, threads: 1, connections: 32, seconds, rate: RATE });
    const used = cpu ? cpu.stop() : NaN;
    return { r, cpuUs: used / Math.max(1, r.requests) };
  }
}

/** Churn for the isolation variant: policy files and endpoints changing until `stop()`. */
class Churn {
  readonly #node: BenchNode;
  #running = true;
  policyOps = 0;
  endpointOps = 0;
  endpointErrors = 0;
  readonly #registered = new Set<number>();
  readonly #loops: Promise<void>[] = [];
  /** One API connection per lane (an AgentClient sends one request at a time). */
  readonly #clients: AgentClient[];

  constructor(node: BenchNode) {
    this.#node = node;
    this.#clients = Array.from({ length: CHURN_LANES }, () => new AgentClient(node.socket));
  }

  /** The churn endpoints' links in the node namespace (they go with it). */
  static links(): void {
    const lines: string[] = [];
    // veth pairs (both ends in the node namespace): the dummy driver is not on every kernel.
    for (let i = 0; i < CHURN_ENDPOINTS; i++) lines.push(`link add bhc${i} type veth peer name bhq${i}`);
    for (let i = 0; i < CHURN_ENDPOINTS; i++) lines.push(`link set bhc${i} up`);
    spawnSync('ip', ['-n', NETNS, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
    if (spawnSync('ip', ['-n', NETNS, 'link', 'show', `bhc${CHURN_ENDPOINTS - 1}`], { stdio: 'ignore' }).status !== 0) {
      throw new Error(`could not create the churn endpoints' links (bhc0…bhc${CHURN_ENDPOINTS - 1}) in ${NETNS}`);
    }
  }

  start(): void {
    this.#loops.push(this.#policies(), this.#endpoints());
  }

  async #policies(): Promise<void> {
    const dir = this.#node.policyDir;
    for (let gen = 0; this.#running; gen++) {
      // 200 files written, then each changed, then removed: the agent's watcher sees every step.
      for (const phase of ['write', 'change', 'remove'] as const) {
        for (let i = 0; i < CHURN_POLICIES && this.#running; i++) {
          const f = join(dir, `churn-${i}.yaml`);
          if (phase === 'remove') rmSync(f, { force: true });
          else writeFileSync(f, churnPolicy(i, phase === 'write' ? gen * 2 : gen * 2 + 1));
          this.policyOps++;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }
  }

  /**
   * Every churn endpoint registered, then every one deregistered, over and over, with
   * CHURN_LANES API calls in flight (as a node's CNI adds and removes pods concurrently: one call
   * at a time would measure the client's round trips, not the agent under churn).
   */
  async #endpoints(): Promise<void> {
    const all = Array.from({ length: CHURN_ENDPOINTS }, (_, i) => i);
    while (this.#running) {
      await this.#inLanes(all, async (i, client) => {
        const ep = {
          name: `churn-${i}`,
          namespace: 'default',
          podLabels: { app: `churn-${i % 10}` },
          namespaceLabels: {},
          namedPorts: {},
          ip: churnIp(i),
          ifname: `bhc${i}`,
        };
        try {
          await client.request('PUT', '/v1/endpoints', ep);
          this.#registered.add(i);
        } catch {
          this.endpointErrors++;
        }
        this.endpointOps++;
      });
      await this.#inLanes(all, (i, client) => this.#deregister(i, client));
    }
  }

  /** `work` for each of `indices`, one call per lane at a time, until done or stopped (`always`: to the end). */
  async #inLanes(indices: readonly number[], work: (i: number, client: AgentClient) => Promise<void>, always = false): Promise<void> {
    let next = 0;
    await Promise.all(
      this.#clients.map(async (client) => {
        while ((always || this.#running) && next < indices.length) await work(indices[next++]!, client);
      }),
    );
  }

  async #deregister(i: number, client: AgentClient): Promise<void> {
    if (!this.#registered.has(i)) return;
    try {
      await client.request('DELETE', `/v1/endpoints/default/churn-${i}`);
    } catch {
      this.endpointErrors++;
    }
    this.#registered.delete(i);
    this.endpointOps++;
  }

  /** Stops the churn; with `tidy`, also removes its policy files and endpoints. */
  async stop(tidy: boolean): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    if (tidy) {
      for (let i = 0; i < CHURN_POLICIES; i++) rmSync(join(this.#node.policyDir, `churn-${i}.yaml`), { force: true });
      await this.#inLanes([...this.#registered], (i, client) => this.#deregister(i, client), true);
    }
    await Promise.all(this.#clients.map((c) => c.close()));
  }
}

/** Churn endpoint `i`'s address: 10.242.(i/250).(i%250+1), never .0 or .255. */
function churnIp(i: number): string {
  return `${CHURN_NET}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

type H2Path = 'kernel' | 'haproxy' | 'nginx' | 'membrane';

interface H2Figures {
  /** The paths measured, kernel first. */
  paths: H2Path[];
  runs: Map<H2Path, H2Result[]>;
  /** Proxy CPU µs per request (not for kernel). */
  cpu: Map<H2Path, number[]>;
  /** Peers that failed the ACL check over HTTP/2, with what they answered. */
  skipped: Map<H2Path, string>;
  /** Why HTTP/2 was not measured at all, if it was not. */
  pending: string | null;
}

/**
 * HTTP/2 (h2c, prior knowledge): kernel only vs Membrane as the agent runs now vs HAProxy and
 * nginx, each proxy after the ACL check over HTTP/2 (allowed request 200, another method 403,
 * another path 403). Membrane or kernel only failing it (or h2load failing) leaves the HTTP/2 row
 * unmeasured with the reason; a peer failing it is left out with what it answered.
 */
async function measureH2(b: HttpBench, iso: Variant, ctx: BenchContext): Promise<H2Figures> {
  const h2: H2Figures = { paths: [], runs: new Map(), cpu: new Map(), skipped: new Map(), pending: null };
  const server = b.node.podIp(POD.server);
  const url: Record<H2Path, string> = {
    kernel: `http://${server}:${PORT.h2l4}${RULE.path}`,
    membrane: `http://${server}:${PORT.h2l7}${RULE.path}`,
    haproxy: `http://${b.gw}:${PORT.h2haproxy}${RULE.path}`,
    nginx: `http://${b.gw}:${PORT.h2nginx}${RULE.path}`,
  };
  const pid: Record<H2Path, number> = { kernel: 0, membrane: b.pidOf(iso), haproxy: b.haproxyPid, nginx: b.nginxPid };
  const acl = (p: H2Path): string[] => [
    curlCode(POD.client, RULE.method, url[p], true),
    curlCode(POD.client, 'GET', url[p], true),
    curlCode(POD.client, RULE.method, url[p].replace(RULE.path, '/v1/exhaust-port'), true),
  ];
  const kernel = curlCode(POD.client, RULE.method, url.kernel, true);
  const membrane = acl('membrane');
  if (kernel !== '200' || membrane.join() !== '200,403,403') {
    h2.pending = `HTTP/2 not measured: through Membrane the allowed request / GET / other path gave ${membrane.join('/')} (want 200/403/403), kernel only ${kernel}`;
    return h2;
  }
  const checked = [`membrane-l7 ${membrane.join('/')}`];
  h2.paths.push('kernel', 'membrane');
  for (const p of ['haproxy', 'nginx'] as const) {
    const got = acl(p);
    if (got.join() === '200,403,403') h2.paths.push(p);
    else h2.skipped.set(p, `failed the ACL check over HTTP/2: allowed/GET/other path gave ${got.join('/')}, want 200/403/403`);
    checked.push(`${p} ${got.join('/')}`);
  }
  b.notes.push(`HTTP/2 ACL check before measuring (allowed request / GET / other path): ${checked.join('; ')}.`);
  for (const p of h2.paths) {
    h2.runs.set(p, []);
    h2.cpu.set(p, []);
  }
  const body = join(b.node.dir, 'h2-body');
  writeFileSync(body, 'x'); // h2load mmaps the body file: it cannot be empty
  const S = b.seconds;
  const load = (p: H2Path, seconds: number): Promise<H2Result> => h2load({ netns: POD.client, url: url[p], clients: 8, streams: 16, seconds, data: body });
  try {
    for (const p of h2.paths) await load(p, S.warm);
    for (let round = 0; round < ctx.runs; round++) {
      // Interleaved, the order rotating each round.
      const order = h2.paths.map((_, i) => h2.paths[(i + round) % h2.paths.length]!);
      for (const p of order) {
        const cpu = pid[p] ? new TreeCpu(pid[p]) : null;
        cpu?.start();
        const r = await load(p, S.sat);
        if (cpu) h2.cpu.get(p)!.push(cpu.stop() / Math.max(1, r.done));
        h2.runs.get(p)!.push(r);
      }
      ctx.log(`HTTP/2 round ${round + 1}: ${h2.paths.map((p) => `${p} ${k(h2.runs.get(p)!.at(-1)!.rps)} req/s${p === 'kernel' ? '' : ` ${us(h2.cpu.get(p)!.at(-1)!)} µs CPU/req`}`).join(', ')}`);
    }
  } catch (err) {
    h2.pending = `HTTP/2 not measured: ${(err as Error).message.slice(0, 300)}`;
  }
  return h2;
}

/** One configuration of the observability-overhead block. */
interface ObsConfig {
  readonly key: string;
  readonly label: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Metrics scraped every second during the run. */
  readonly scrape: boolean;
}

/** One measured run of one configuration (a fresh agent, warmed). */
interface ObsRun {
  readonly r: WrkResult;
  /** utime+stime of the agent's process tree ÷ requests, µs (/proc/PID/stat, 10 ms ticks). */
  readonly agentUs: number;
  /** The proxy worker thread's run time ÷ requests, µs (/proc/PID/task/TID/schedstat, ns); NaN if not found. */
  readonly workerUs: number;
  readonly sink: { posts: number; bytes: number; scrapes: number; scrapeFailed: number; scrapeBytes: number };
}

interface ObsFigures {
  readonly configs: readonly ObsConfig[];
  /** Per configuration, one run per round (index = round). */
  readonly runs: Map<string, ObsRun[]>;
  /** Seconds of each measured run and of the unmeasured paced settle before it. */
  readonly seconds: { readonly measured: number; readonly settle: number };
  /** Why the block was not measured, if it was not (rounds done before the failure are kept). */
  pending: string | null;
}

/** Off and its A/A twin: the same configuration in two fresh agents, the block's own noise floor. */
const OBS_OFF = 'tracing-off';
const OBS_AA = 'tracing-off-again';
const OBS_TARGET = 'tracing-1pct+metrics-1s';

/**
 * The issue-11 configurations. Traced ones export to the sink with the OpenTelemetry variables the
 * agent honours (src/tracing/config.ts); OTEL_BSP_SCHEDULE_DELAY=1000 (default 5000) so that the
 * spans of a run are exported, and paid for, inside it.
 */
function obsConfigs(quick: boolean): ObsConfig[] {
  const otlp = ['--otlp-endpoint', `http://127.0.0.1:${PORT.otlp}`];
  const metrics = ['--prometheus-serve-addr', `127.0.0.1:${PORT.metrics}`];
  const traced = (ratio: string): Record<string, string> => ({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: ratio, OTEL_BSP_SCHEDULE_DELAY: '1000' });
  const all: ObsConfig[] = [
    { key: OBS_OFF, label: 'tracing off, metrics off', args: [], env: {}, scrape: false },
    { key: OBS_AA, label: 'tracing off, metrics off (A/A: another fresh agent)', args: [], env: {}, scrape: false },
    { key: 'tracing-100pct', label: 'tracing, 100% sampled (parentbased_traceidratio 1.0)', args: otlp, env: traced('1.0'), scrape: false },
    { key: 'tracing-1pct', label: 'tracing, 1% sampled (parentbased_traceidratio 0.01)', args: otlp, env: traced('0.01'), scrape: false },
    { key: 'metrics-1s', label: 'metrics on, scraped every second', args: metrics, env: {}, scrape: true },
    { key: OBS_TARGET, label: 'tracing 1% + metrics scraped every second', args: [...otlp, ...metrics], env: traced('0.01'), scrape: true },
  ];
  // --quick: the target's pair, its A/A twin and full sampling (a detectable effect) only.
  return quick ? all.filter((c) => QUICK_OBS.includes(c.key)) : all;
}

const QUICK_OBS = [OBS_OFF, OBS_AA, 'tracing-100pct', OBS_TARGET];

/** Time thread `tid` of `pid` has run, ns (schedstat's first field); NaN when it is gone. */
function threadRunNs(pid: number, tid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/**
 * A paired ratio's median and a distribution-free interval for it (sign test: the order
 * statistics x(j), x(n+1−j) with the largest j whose coverage 1 − 2·P(Bin(n, ½) ≤ j−1) is ≥ 90%).
 * Fewer than 5 rounds bound nothing at 90%: `lo`/`hi` are NaN.
 */
function pairedInterval(ratios: readonly number[]): { median: number; lo: number; hi: number; coverage: number } {
  const xs = ratios.filter(Number.isFinite).sort((a, b) => a - b);
  const n = xs.length;
  const med = n ? median(xs) : NaN;
  const cdf = (j: number): number => {
    let p = 0;
    let c = 1;
    for (let i = 0; i <= j; i++) {
      p += c / 2 ** n;
      c = (c * (n - i)) / (i + 1);
    }
    return p;
  };
  let best: { j: number; coverage: number } | null = null;
  for (let j = 1; j <= n >> 1; j++) {
    const coverage = 1 - 2 * cdf(j - 1);
    if (coverage >= 0.9) best = { j, coverage };
  }
  if (!best) return { median: med, lo: NaN, hi: NaN, coverage: NaN };
  return { median: med, lo: xs[best.j - 1]!, hi: xs[n - best.j]!, coverage: best.coverage };
}

/** CPU per request of `key` ÷ tracing off's, round by round (each round's own off run). */
function obsRatios(o: ObsFigures, key: string, metric: 'agentUs' | 'workerUs'): number[] {
  const off = o.runs.get(OBS_OFF) ?? [];
  return (o.runs.get(key) ?? []).map((x, i) => x[metric] / (off[i]?.[metric] ?? NaN)).filter(Number.isFinite);
}

/** Whether `key` adds ≤ 5% at the interval's ends: 'met', 'missed', or not resolvable by these runs. */
function obsVerdict(ci: { lo: number; hi: number }): 'met' | 'missed' | 'unresolved' {
  if (!Number.isFinite(ci.lo)) return 'unresolved';
  if (ci.hi <= 1.05) return 'met';
  if (ci.lo > 1.05) return 'missed';
  return 'unresolved';
}

/**
 * Observability overhead, built to resolve a 5% difference: every configuration is a fresh agent
 * (`base` args: 1 proxy worker when it has workers), brought to the same state (saturated
 * `warm` s, then an unmeasured paced run of `settle` s with its scraping and exports already on),
 * then one measured paced run. One run of each configuration per round, the order rotating and
 * reversed every other round (drift of the machine falls on every configuration alike); each
 * configuration is compared with tracing off of the same round (paired ratios). Measured: the
 * whole agent's CPU (process tree, /proc/PID/stat) and the proxy worker thread's run time
 * (/proc/PID/task/TID/schedstat, ns: where a request's tracing is paid). The agent is left running
 * with `base` again.
 */
async function measureObs(b: HttpBench, base: readonly string[], ctx: BenchContext): Promise<ObsFigures> {
  const configs = obsConfigs(ctx.quick);
  const seconds = ctx.quick ? { measured: 5, settle: 2 } : { measured: 12, settle: 4 };
  const o: ObsFigures = { configs, runs: new Map(configs.map((c) => [c.key, []])), seconds, pending: null };
  try {
    for (let round = 0; round < ctx.runs; round++) {
      const rotated = configs.map((_, i) => configs[(i + round) % configs.length]!);
      const order = round % 2 ? rotated.reverse() : rotated;
      for (const c of order) {
        await b.restart([...base, ...c.args], c.env);
        const pid = b.node.agent?.pid ?? 0;
        // Warmed as the performance row's agent is; the busiest thread but main is the proxy worker.
        const threads = new ThreadCpu(pid);
        threads.start();
        await b.saturate('membrane-l7', b.seconds.warm);
        const tid = base.includes('--proxy-workers') ? (threads.stop().find((t) => t.tid !== pid)?.tid ?? NaN) : pid;
        if (c.scrape) b.sink('POST', '/scrape?every=1000');
        await b.paced('membrane-l7', seconds.settle); // the paced steady state: exports and scrapes under way
        const s0 = b.sinkStats();
        const w0 = threadRunNs(pid, tid);
        const p = await b.paced('membrane-l7', seconds.measured);
        const w1 = threadRunNs(pid, tid);
        if (c.scrape) b.sink('POST', '/scrape?every=0');
        const s1 = b.sinkStats();
        const run: ObsRun = {
          r: p.r,
          agentUs: p.cpuUs,
          workerUs: (w1 - w0) / 1000 / Math.max(1, p.r.requests),
          sink: {
            posts: s1.traces.requests - s0.traces.requests,
            bytes: s1.traces.bytes - s0.traces.bytes,
            scrapes: s1.scrapes.ok - s0.scrapes.ok,
            scrapeFailed: s1.scrapes.failed - s0.scrapes.failed,
            scrapeBytes: s1.scrapes.bytes - s0.scrapes.bytes,
          },
        };
        o.runs.get(c.key)!.push(run);
        ctx.log(
          `observability round ${round + 1}/${ctx.runs} ${c.key}: agent ${run.agentUs.toFixed(1)} µs/req, worker thread ${run.workerUs.toFixed(1)} µs/req at ${k(p.r.rps)} req/s, p99 ${ms(p.r.p99Ms)} ms; OTLP ${run.sink.posts} POSTs ${(run.sink.bytes / 1024).toFixed(0)} KiB, ${run.sink.scrapes} scrapes`,
        );
      }
    }
  } catch (err) {
    o.pending = `observability overhead not measured: ${(err as Error).message.slice(0, 300)}`;
  }
  // The rounds done are kept even when the node cannot serve again (what failed is in `pending`;
  // a later block that needs the agent fails on its own).
  try {
    await b.restart(base);
  } catch (err) {
    o.pending ??= `observability overhead: the agent did not serve again after the block: ${(err as Error).message.slice(0, 300)}`;
  }
  return o;
}

/** The observability block's table, targets and notes (`perfUs`: the performance row's CPU/req, NaN when it was not measured). */
function obsReport(ctx: BenchContext, b: HttpBench, o: ObsFigures, variantLabel: string, perfUs: number): { table: BenchTable; targets: BenchTarget[]; notes: string[]; rows: BenchRow[] } {
  const rounds = Math.min(...o.configs.map((c) => o.runs.get(c.key)!.length));
  const pct = (r: number): string => (Number.isFinite(r) ? `${r >= 1 ? '+' : '−'}${Math.abs((r - 1) * 100).toFixed(1)}%` : '—');
  const ci = (key: string, metric: 'agentUs' | 'workerUs'): string => {
    if (key === OBS_OFF) return 'reference';
    const x = pairedInterval(obsRatios(o, key, metric));
    return Number.isFinite(x.lo) ? `${pct(x.median)} [${pct(x.lo)}, ${pct(x.hi)}]` : `${pct(x.median)} (no interval: ${rounds} round(s))`;
  };
  const rows: BenchRow[] = [];
  for (const c of o.configs) {
    const rs = o.runs.get(c.key)!;
    if (!rs.length) continue;
    rows.push(row('http', `obs ${c.key}`, 'cpu_us_per_req', 'µs', rs.map((x) => x.agentUs)));
    rows.push(row('http', `obs ${c.key}`, 'worker_cpu_us_per_req', 'µs', rs.map((x) => x.workerUs)));
    rows.push(row('http', `obs ${c.key}`, 'p99_ms', 'ms', rs.map((x) => x.r.p99Ms)));
  }
  const table: BenchTable = {
    title: `Observability overhead: ${variantLabel} at ${RATE} req/s (wrk -t1 -c32 paced), a fresh agent per configuration and round, ${rounds} round(s); CPU per request median (min–max), and vs tracing off of the same round: median paired difference [90% interval]`,
    header: ['configuration', 'agent CPU µs/req', 'agent vs off', 'worker thread µs/req', 'worker vs off', 'p99, ms', 'achieved req/s', 'OTLP export / scrapes per run'],
    rows: [
      ...(o.pending ? [['all', 'pending', '—', '—', '—', '—', '—', o.pending]] : []),
      ...o.configs
        .filter((c) => o.runs.get(c.key)!.length > 0)
        .map((c) => {
          const rs = o.runs.get(c.key)!;
          const sk = rs.map((x) => x.sink);
          const failed = sk.reduce((a, x) => a + x.scrapeFailed, 0);
          const exp = c.args.includes('--otlp-endpoint') ? `${median(sk.map((x) => x.posts))} POSTs, ${(median(sk.map((x) => x.bytes)) / 1024).toFixed(0)} KiB` : '';
          const scr = c.scrape ? `${median(sk.map((x) => x.scrapes))} scrapes (${(median(sk.map((x) => x.scrapeBytes / Math.max(1, x.scrapes))) / 1024).toFixed(0)} KiB each)${failed ? `, ${failed} failed` : ''}` : '';
          return [
            c.label,
            spread(rs.map((x) => x.agentUs), (n) => n.toFixed(1)),
            ci(c.key, 'agentUs'),
            spread(rs.map((x) => x.workerUs), (n) => n.toFixed(1)),
            ci(c.key, 'workerUs'),
            spread(rs.map((x) => x.r.p99Ms), ms),
            k(median(rs.map((x) => x.r.rps))),
            [exp, scr].filter(Boolean).join('; ') || '—',
          ];
        }),
    ],
  };

  const targets: BenchTarget[] = [];
  const achieved = (key: string): number => median((o.runs.get(key) ?? []).map((x) => x.r.rps));
  const starved = o.configs.filter((c) => o.runs.get(c.key)!.length && achieved(c.key) < RATE * 0.95).map((c) => `${c.key} ${k(achieved(c.key))} req/s`);
  const starvedNote = starved.length ? `the agent did not keep up with ${RATE} req/s (${starved.join(', ')} achieved): CPU-starved by other work, so CPU per request is inflated; ` : '';
  const aa = { agent: pairedInterval(obsRatios(o, OBS_AA, 'agentUs')), worker: pairedInterval(obsRatios(o, OBS_AA, 'workerUs')) };
  const aaText = (x: { median: number; lo: number; hi: number }): string => (Number.isFinite(x.lo) ? `${pct(x.median)} [${pct(x.lo)}, ${pct(x.hi)}]` : `${pct(x.median)} (no interval)`);
  const floor = `A/A (two fresh tracing-off agents, same round): agent ${aaText(aa.agent)}, worker thread ${aaText(aa.worker)}`;
  if (rounds === 0) {
    targets.push({ target: 'observability overhead (tracing off; 1% sampling + metrics ≤ 5% CPU/request)', figure: o.pending ?? 'not measured', met: false, limit: o.pending ?? 'no round completed' });
    return { table, targets, notes: o.pending ? [o.pending] : [], rows };
  }
  const offUs = median(o.runs.get(OBS_OFF)!.map((x) => x.agentUs));
  // Off is the performance row's own configuration (no OpenTelemetry code loaded, one
  // hasSubscribers branch per request): what can be measured is that two such agents agree
  // within the block's resolution, and the performance row's figure beside them.
  const aaResolved = Number.isFinite(aa.agent.lo) && aa.agent.lo >= 0.95 && aa.agent.hi <= 1.05;
  targets.push({
    target: 'tracing off costs nothing measurable (two fresh tracing-off agents agree within ±5% CPU/request, 90% interval)',
    figure: `${floor}${Number.isFinite(perfUs) ? `; tracing off ${offUs.toFixed(1)} µs/req vs ${perfUs.toFixed(1)} µs/req in the performance row (${ratio(offUs, perfUs)})` : ''}`,
    met: aaResolved,
    limit: `${starvedNote}${Number.isFinite(aa.agent.lo) ? 'the A/A interval is wider than ±5%: this machine\'s noise over these runs cannot resolve 5%' : `${rounds} round(s): at least 5 are needed for a 90% interval (--runs 5)`}`,
  });
  const t = { agent: pairedInterval(obsRatios(o, OBS_TARGET, 'agentUs')), worker: pairedInterval(obsRatios(o, OBS_TARGET, 'workerUs')) };
  const verdict = obsVerdict(t.agent);
  const others = o.configs
    .filter((c) => c.key !== OBS_OFF && c.key !== OBS_AA && c.key !== OBS_TARGET && o.runs.get(c.key)!.length)
    .map((c) => `${c.key} agent ${aaText(pairedInterval(obsRatios(o, c.key, 'agentUs')))}, worker ${aaText(pairedInterval(obsRatios(o, c.key, 'workerUs')))}`)
    .join('; ');
  targets.push({
    target: 'tracing at 1% sampling and metrics scraped every second together add ≤ 5% CPU per request (whole agent, 90% interval of the paired difference)',
    figure: `${verdict === 'unresolved' ? 'NOT RESOLVED: ' : ''}agent ${aaText(t.agent)}, worker thread ${aaText(t.worker)} vs tracing off; ${floor}${others ? `; ${others}` : ''}`,
    met: verdict === 'met',
    limit:
      verdict === 'unresolved'
        ? `${starvedNote}the interval ${Number.isFinite(t.agent.lo) ? `[${pct(t.agent.lo)}, ${pct(t.agent.hi)}] straddles +5%` : `needs at least 5 rounds (${rounds} done)`}: these runs can neither show nor exclude a 5% cost; more rounds (--runs) or a quieter machine narrow it`
        : `${starvedNote}the whole interval [${pct(t.agent.lo)}, ${pct(t.agent.hi)}] is above +5%`,
  });
  const notes = [
    ...(o.pending ? [o.pending] : []),
    `Observability overhead${ctx.quick ? ` (--quick: ${QUICK_OBS.join(', ')} only)` : ''}: every configuration is a fresh agent (${variantLabel}) per round, brought to the same state — saturated ${b.seconds.warm} s, then ${o.seconds.settle} s paced at ${RATE} req/s unmeasured with its exports and scrapes already running — then measured over ${o.seconds.measured} s at ${RATE} req/s. One run of each configuration per round; the order rotates each round and is reversed every other round. Each configuration is compared with tracing off of the same round (paired ratio); the interval is the sign test's (order statistics of the paired ratios, coverage ≥ 90%; none below 5 rounds). "tracing off (A/A)" is the same configuration as tracing off in another fresh agent: its interval is what this block can resolve on this machine. Agent CPU: utime+stime of the agent's process tree (/proc/PID/stat, 10 ms ticks); worker thread: the proxy worker's run time (/proc/PID/task/TID/schedstat, ns; the busiest thread but main while saturated), where a request's tracing is paid — scraping is paid on the main thread, in the agent figure only.`,
    `Tracing exports OTLP/HTTP (protobuf) to a sink on the node namespace's loopback (bench/lib/obs-sink.ts: 200 to POST /v1/traces, bytes counted) with OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG 1.0 or 0.01 (wrk sends no traceparent: every request is a root, sampled at the ratio) and OTEL_BSP_SCHEDULE_DELAY=1000 so the exports fall inside the run. Metrics: --prometheus-serve-addr 127.0.0.1:${PORT.metrics}, GET /metrics every second over a kept-alive connection from the sink's process (the scraper's own CPU is not the agent's).`,
  ];
  return { table, targets, notes, rows };
}

/** CPU of every process on the machine over an interval (/proc/PID/stat), busiest first: what competed with the proxy. */
class MachineCpu {
  #before = new Map<number, number>();
  #sample(): Map<number, { comm: string; us: number }> {
    const out = new Map<number, { comm: string; us: number }>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        // utime+stime and the children's that were waited for (an `ip` a process ran and reaped)
        out.set(Number(name), { comm, us: ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1e6) / 100 });
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }
  start(): void {
    this.#before = new Map([...this.#sample()].map(([p, x]) => [p, x.us]));
  }
  stop(): { pid: number; comm: string; us: number }[] {
    return [...this.#sample()]
      .map(([pid, x]) => ({ pid, comm: x.comm, us: x.us - (this.#before.get(pid) ?? 0) }))
      .filter((x) => x.us > 0)
      .sort((a, b) => b.us - a.us);
  }
}

/** The isolation block's runs: quiet and under churn, interleaved (`variant`: the agent as it runs now). */
interface IsoRuns {
  quiet: WrkResult[];
  busy: WrkResult[];
  churnOps: { policy: number; endpoint: number; errors: number }[];
  /** CPU of the agent's threads during each churn run, % of one core, busiest first (where the churn's work ran). */
  churnThreads: string[];
  variant: Variant;
}

/**
 * Membrane quiet vs while CHURN_POLICIES policy files change and CHURN_ENDPOINTS endpoints come
 * and go, at RATE req/s, `ctx.runs` rounds (the agent must serve `iso` already, warm).
 */
async function measureIsolation(b: HttpBench, iso: Variant, ctx: BenchContext): Promise<IsoRuns> {
  const S = b.seconds;
  Churn.links();
  // The churn links go with the node namespace (removed at cleanup, after the agent has stopped:
  // deleting 1,000 links one by one under a running agent took 20 s).
  const quiet: WrkResult[] = [];
  const busy: WrkResult[] = [];
  const churnOps: { policy: number; endpoint: number; errors: number }[] = [];
  const churnThreads: string[] = [];
  const underChurn = async (): Promise<void> => {
    const churn = new Churn(b.node);
    churn.start();
    await new Promise((r) => setTimeout(r, 500)); // the churn under way before the load starts
    const pid = b.pidOf(iso);
    const tc = new ThreadCpu(pid);
    const machine = new MachineCpu();
    tc.start();
    machine.start();
    busy.push((await b.paced(iso, S.paced)).r);
    const threads = tc
      .stop()
      .slice(0, 4)
      .map((t) => `${t.tid === pid ? 'main' : `${t.name}[${t.tid}]`} ${((100 * t.us) / (S.paced * 1e6)).toFixed(0)}%`)
      .join(', ');
    const procs = machine
      .stop()
      .slice(0, 6)
      .map((p) => `${p.pid === pid ? 'agent' : p.pid === process.pid ? 'bench (churn driver)' : `${p.comm}[${p.pid}]`} ${((100 * p.us) / (S.paced * 1e6)).toFixed(0)}%`)
      .join(', ');
    churnThreads.push(`${threads}; busiest processes: ${procs}`);
    churnOps.push({ policy: churn.policyOps, endpoint: churn.endpointOps, errors: churn.endpointErrors });
    // After the last churn run nothing is measured: the node goes, its endpoints with it.
    await churn.stop(busy.length + quiet.length < 2 * ctx.runs);
    if (busy.length + quiet.length < 2 * ctx.runs) await b.ready(iso);
  };
  for (let round = 0; round < ctx.runs; round++) {
    // Interleaved, the order alternating: quiet then churn, churn then quiet, …
    if (round % 2) await underChurn();
    quiet.push((await b.paced(iso, S.paced)).r);
    if (!(round % 2)) await underChurn();
    const o = churnOps.at(-1)!;
    ctx.log(
      `isolation round ${round + 1}: p99 quiet ${ms(quiet.at(-1)!.p99Ms)} ms, churn ${ms(busy.at(-1)!.p99Ms)} ms (${o.policy} policy-file ops, ${o.endpoint} endpoint ops during the run; agent threads under churn: ${churnThreads.at(-1)})`,
    );
  }
  return { quiet, busy, churnOps, churnThreads, variant: iso };
}

/** The isolation table and target (`shared`: what the churn shares with the proxy, for the limit). */
function isoReport(iso: IsoRuns, rowName: string, variantLabel: string, shared: string): { table: BenchTable; target: BenchTarget; rows: BenchRow[]; notes: string[] } {
  const qp = median(iso.quiet.map((r) => r.p99Ms));
  const bp = median(iso.busy.map((r) => r.p99Ms));
  const ops = iso.churnOps;
  const rows = [
    row('http', `${rowName} ${RATE}rps quiet`, 'p99_ms', 'ms', iso.quiet.map((r) => r.p99Ms)),
    row('http', `${rowName} ${RATE}rps churn`, 'p99_ms', 'ms', iso.busy.map((r) => r.p99Ms)),
    row('http', `${rowName} ${RATE}rps churn`, 'req_per_s', 'req/s', iso.busy.map((r) => r.rps)),
  ];
  const table: BenchTable = {
    title: `HTTP isolation: ${variantLabel} at ${RATE} req/s, quiet vs while ${CHURN_POLICIES} policy files change and ${CHURN_ENDPOINTS} endpoints come and go`,
    header: ['condition', `p99, ms`, 'p50, ms', 'achieved req/s', 'control-plane ops during the run', '× quiet p99'],
    rows: [
      ['quiet', spread(iso.quiet.map((r) => r.p99Ms), ms), ms(median(iso.quiet.map((r) => r.p50Ms))), k(median(iso.quiet.map((r) => r.rps))), '—', '1.00×'],
      [
        'policy + endpoint churn',
        spread(iso.busy.map((r) => r.p99Ms), ms),
        ms(median(iso.busy.map((r) => r.p50Ms))),
        k(median(iso.busy.map((r) => r.rps))),
        `${median(ops.map((o) => o.policy))} policy-file writes/removals, ${median(ops.map((o) => o.endpoint))} endpoint PUT/DELETE`,
        ratio(bp, qp),
      ],
    ],
  };
  const target: BenchTarget = {
    target: `isolation: p99 at ${RATE} req/s under churn within 20% of quiet`,
    figure: `${ms(bp)} ms vs ${ms(qp)} ms quiet (${ratio(bp, qp)})`,
    met: bp <= qp * 1.2,
    limit: `regenerations (${median(ops.map((o) => o.policy))} policy-file operations and ${median(ops.map((o) => o.endpoint))} endpoint operations done during the run) share ${shared}`,
  };
  const notes = [
    `Isolation: agent threads' CPU during each churn run (% of one core, busiest first): ${iso.churnThreads.map((t, i) => `run ${i + 1}: ${t}`).join('; ')}.`,
    ...(ops.some((o) => o.errors) ? [`churn: ${ops.map((o) => o.errors).join('/')} endpoint API calls failed.`] : []),
  ];
  return { table, target, rows, notes };
}

/** `--only http:iso`: the node, the agent with 1 proxy worker (when it has them), then the isolation block alone. */
async function runIsoOnly(ctx: BenchContext, b: HttpBench, workers: boolean): Promise<BenchResult> {
  await setupChecked(ctx, b);
  ctx.log('isolation only (--only http:iso)');
  const iso: Variant = workers ? 'membrane-w1' : 'membrane-l7';
  await b.saturate(iso, b.seconds.warm);
  const runs = await measureIsolation(b, iso, ctx);
  const label = workers ? 'Membrane L7, 1 worker(s) (access log + flows)' : 'Membrane L7 (access log + flows)';
  const r = isoReport(runs, workers ? 'membrane-l7 w1' : 'membrane-l7', label, workers ? "the proxy's process" : "the proxy's process and event loop");
  return { rows: r.rows, tables: [r.table], targets: [r.target], notes: [...b.notes, ...r.notes] };
}

/** `b.setup()`, its ACL check tried once more after 3 s (right after the agent's start the policy may not be in force yet). */
async function setupChecked(ctx: BenchContext, b: HttpBench): Promise<void> {
  try {
    await b.setup();
  } catch (err) {
    // The ACL check is setup's last step; right after the agent's start the policy directory may
    // not be in force yet (an endpoint no policy selects is allowed): checked once more, later.
    if (!/does not enforce/.test((err as Error).message)) throw err;
    ctx.log(`${(err as Error).message}; checking again in 3 s`);
    await new Promise((r) => setTimeout(r, 3000));
    b.aclCheck();
  }
}

/** `--only http:obs`: the node, then the observability block alone (no performance row to compare off with). */
async function runObsOnly(ctx: BenchContext, b: HttpBench, workers: boolean): Promise<BenchResult> {
  await setupChecked(ctx, b);
  ctx.log('observability overhead only (--only http:obs): a fresh agent per configuration and round');
  const obs = await measureObs(b, workers ? ['--proxy-workers', '1'] : [], ctx);
  const r = obsReport(ctx, b, obs, workers ? 'Membrane L7, 1 worker(s) (access log + flows)' : 'Membrane L7 (access log + flows)', NaN);
  return { rows: r.rows, tables: [r.table], targets: r.targets, notes: [...b.notes, ...r.notes] };
}

async function runHttp(ctx: BenchContext): Promise<BenchResult> {
  const b = new HttpBench(ctx);
  ctx.onCleanup(async () => {
    stopWrk();
    stopH2load();
    const t = Date.now();
    await b.node.stopAgent();
    const t1 = Date.now();
    await b.node.cleanup();
    ctx.log(`agent stopped in ${((t1 - t) / 1000).toFixed(1)} s, node removed in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  });
  const workerCounts = hasProxyWorkers() ? [1, 2] : [];
  const membrane: Variant[] = workerCounts.length ? workerCounts.map((n) => `membrane-w${n}` as Variant) : ['membrane-l7'];
  ctx.log(`setting up node ${NETNS} (agent, pods, nginx backend, HAProxy, nginx proxy)`);
  if (workerCounts.length) {
    b.agentArgs.push('--proxy-workers', String(workerCounts[0]));
    b.workersNow = workerCounts[0]!;
  }
  if (ctx.blocks) {
    const unknown = ctx.blocks.filter((x) => x !== 'obs' && x !== 'iso');
    if (unknown.length > 0 || ctx.blocks.length !== 1) throw new Error(`http runs one block alone, obs (the observability overhead) or iso (isolation under churn); asked for ${ctx.blocks.join(', ')}`);
    return ctx.blocks[0] === 'iso' ? runIsoOnly(ctx, b, workerCounts.length > 0) : runObsOnly(ctx, b, workerCounts.length > 0);
  }
  await b.setup();

  const peers: Variant[] = ['kernel', 'haproxy', 'nginx'];
  const all: Variant[] = [...peers, ...membrane];
  const m = new Map<Variant, Measured>(all.map((v) => [v, { sat: [], satCpu: [], paced: [], cpu: [] }]));
  const machineBusy = new Map<Variant, number[]>(all.map((v) => [v, []]));
  const S = b.seconds;
  const loadBefore = loadavg()[0]!;

  for (const v of all) {
    if (v.startsWith('membrane-w')) await b.workers(Number(v.slice('membrane-w'.length)));
    await b.saturate(v, S.warm); // warm-up: connections, JIT, caches
  }
  for (let round = 0; round < ctx.runs; round++) {
    // Interleaved: every variant once per round, the peers' order rotating; the Membrane
    // variants together (a worker-count change restarts the agent), their order alternating.
    // The Membrane variant the agent runs now goes first: one restart per round, not two.
    const rot = peers.map((_, i) => peers[(i + round) % peers.length]!);
    const current = membrane.findIndex((v) => v === `membrane-w${b.workersNow}`);
    const mem = current > 0 ? [...membrane.slice(current), ...membrane.slice(0, current)] : membrane;
    const order = round % 2 ? [...mem, ...rot] : [...rot, ...mem];
    for (const v of order) {
      if (v.startsWith('membrane-w')) await b.workers(Number(v.slice('membrane-w'.length)));
      const s = await b.saturate(v, S.sat);
      const p = await b.paced(v, S.paced);
      const x = m.get(v)!;
      x.sat.push(s.r);
      x.satCpu.push(s.cpuUs);
      x.paced.push(p.r);
      x.cpu.push(p.cpuUs);
      machineBusy.get(v)!.push(s.machineBusy);
      ctx.log(`round ${round + 1}/${ctx.runs} ${v}: ${k(s.r.rps)} req/s saturated; p99 ${ms(p.r.p99Ms)} ms at ${k(p.r.rps)} req/s, ${us(p.cpuUs)} µs CPU/req`);
    }
  }

  const iso: Variant = membrane[0]!;
  if (iso.startsWith('membrane-w')) await b.workers(Number(iso.slice('membrane-w'.length)));

  // CPU profiles of the agent's main thread and its proxy workers at saturation, for what limits
  // Membrane (a run of its own: profiling slows the agent, so its figures are not kept).
  let profile: string | null = null;
  try {
    const file = join(b.node.dir, 'agent-saturated.cpuprofile');
    const seconds = ctx.quick ? 3 : 5;
    const tc = new ThreadCpu(b.pidOf(iso));
    b.node.profileStart();
    await new Promise((r) => setTimeout(r, 200));
    tc.start();
    await b.saturate(iso, seconds);
    const perThread = tc.stop();
    await b.node.profileStop(file);
    const busiest = perThread.slice(0, 4).map((t) => `${t.tid === b.pidOf(iso) ? 'main' : `${t.name}[${t.tid}]`} ${((100 * t.us) / (seconds * 1e6)).toFixed(0)}%`).join(', ');
    // The proxy workers' own profiles (agent-probe.ts: file.worker-N.cpuprofile), where the proxy runs.
    const workerFiles = readdirSync(b.node.dir)
      .filter((f) => f.startsWith('agent-saturated.cpuprofile.worker-'))
      .sort();
    const workerLines = workerFiles.map((f) => `worker ${f.replace(/^.*worker-(\d+).*$/, '$1')}: ${profileLine(summariseProfile(join(b.node.dir, f))).replace(/^main thread/, 'thread')}`);
    profile = `busiest agent threads (% of one core): ${busiest}; main thread: ${profileLine(summariseProfile(file)).replace(/^main thread/, 'thread')}${workerLines.map((l) => `; ${l}`).join('')}`;
    if (process.env.MEMBRANE_BENCH_PROFILE) {
      mkdirSync(process.env.MEMBRANE_BENCH_PROFILE, { recursive: true });
      writeFileSync(join(process.env.MEMBRANE_BENCH_PROFILE, 'http-agent-saturated.cpuprofile'), readFileSync(file));
      for (const f of workerFiles) writeFileSync(join(process.env.MEMBRANE_BENCH_PROFILE, `http-${f.replace('agent-saturated.cpuprofile.', '').replace('.cpuprofile', '')}-saturated.cpuprofile`), readFileSync(join(b.node.dir, f)));
    }
  } catch (err) {
    ctx.log(`profile failed: ${(err as Error).message}`);
  }

  const h2 = await measureH2(b, iso, ctx);

  // Observability overhead: 1 worker (or the agent's default), restarted per configuration.
  ctx.log('observability overhead: the agent restarted per configuration');
  const obs = await measureObs(b, workerCounts.length ? ['--proxy-workers', '1'] : [], ctx);
  if (iso.startsWith('membrane-w')) b.workersNow = 1;
  await b.saturate(iso, S.warm);

  // Isolation: Membrane (1 worker, or the agent's default) quiet vs under control-plane churn.
  const isoRuns = await measureIsolation(b, iso, ctx);

  const agentPid = b.node.agent?.pid;
  const threads = agentPid ? readdirSync(`/proc/${agentPid}/task`).length : NaN;

  b.notes.push(`Machine load average (1 min) ${loadBefore.toFixed(1)} before the measurements and ${loadavg()[0]!.toFixed(1)} after, on ${readdirSync('/sys/devices/system/cpu').filter((d) => /^cpu\d+$/.test(d)).length} cores: anything above ~2 means other work competed with the benchmark.`);
  return report(ctx, b, all, m, machineBusy, isoRuns, profile, threads, h2, obs);
}

function report(
  ctx: BenchContext,
  b: HttpBench,
  all: readonly Variant[],
  m: Map<Variant, Measured>,
  machineBusy: Map<Variant, number[]>,
  iso: IsoRuns,
  profile: string | null,
  threads: number,
  h2: H2Figures,
  obs: ObsFigures,
): BenchResult {
  const rows: BenchRow[] = [];
  const name = (v: Variant): string => (v === 'membrane-l7' ? 'membrane-l7' : v.startsWith('membrane-w') ? `membrane-l7 ${v.slice('membrane-'.length)}` : v);
  for (const v of all) {
    const x = m.get(v)!;
    rows.push(row('http', `${name(v)} saturated`, 'req_per_s', 'req/s', x.sat.map((r) => r.rps)));
    rows.push(row('http', `${name(v)} saturated`, 'p99_ms', 'ms', x.sat.map((r) => r.p99Ms)));
    if (v !== 'kernel') rows.push(row('http', `${name(v)} saturated`, 'cpu_us_per_req', 'µs', x.satCpu));
    rows.push(row('http', `${name(v)} ${RATE}rps`, 'req_per_s', 'req/s', x.paced.map((r) => r.rps)));
    rows.push(row('http', `${name(v)} ${RATE}rps`, 'p50_ms', 'ms', x.paced.map((r) => r.p50Ms)));
    rows.push(row('http', `${name(v)} ${RATE}rps`, 'p99_ms', 'ms', x.paced.map((r) => r.p99Ms)));
    if (v !== 'kernel') rows.push(row('http', `${name(v)} ${RATE}rps`, 'cpu_us_per_req', 'µs', x.cpu));
  }
  const h2Name = (p: H2Path): string => (p === 'membrane' ? name(iso.variant) : p);
  if (!h2.pending) {
    for (const p of h2.paths) {
      rows.push(row('http', `${h2Name(p)} h2 saturated`, 'req_per_s', 'req/s', h2.runs.get(p)!.map((r) => r.rps)));
      if (p !== 'kernel') rows.push(row('http', `${h2Name(p)} h2 saturated`, 'cpu_us_per_req', 'µs', h2.cpu.get(p)!));
    }
  }
  // The observability block's rows, table, targets and notes (obsReport, after labelOf).

  const med = (v: Variant, f: (x: Measured) => number[]): number => median(f(m.get(v)!));
  const sat = (v: Variant): number => med(v, (x) => x.sat.map((r) => r.rps));
  const cpu = (v: Variant): number => med(v, (x) => x.cpu);
  const p99 = (v: Variant): number => med(v, (x) => x.paced.map((r) => r.p99Ms));
  const achieved = (v: Variant): number => med(v, (x) => x.paced.map((r) => r.rps));
  const label: Record<string, string> = {
    kernel: 'kernel only (L3/L4 policy, no proxy)',
    haproxy: 'HAProxy 2.6, 1 thread, same ACL',
    nginx: 'nginx 1.22 reverse proxy, 1 worker, same ACL',
    'membrane-l7': 'Membrane L7 (access log + flows)',
  };
  const labelOf = (v: Variant): string => label[v] ?? `Membrane L7, ${v.slice('membrane-w'.length)} worker(s) (access log + flows)`;
  const main: BenchTable = {
    title: `HTTP: wrk (client pod) → ${RULE.method} ${RULE.path} → nginx (server pod); medians of ${ctx.runs} run(s) (min–max); 2 shared cores`,
    header: ['path', 'saturated req/s', '× HAProxy', '× nginx', `p99 at ${RATE} req/s, ms`, 'achieved req/s', 'proxy CPU µs/req', '× HAProxy', '× nginx'],
    rows: all.map((v) => {
      const x = m.get(v)!;
      return [
        labelOf(v),
        spread(x.sat.map((r) => r.rps), k),
        v === 'haproxy' ? '1.00×' : ratio(sat(v), sat('haproxy')),
        v === 'nginx' ? '1.00×' : ratio(sat(v), sat('nginx')),
        spread(x.paced.map((r) => r.p99Ms), ms),
        k(median(x.paced.map((r) => r.rps))),
        v === 'kernel' ? '—' : spread(x.cpu, us),
        v === 'kernel' ? '—' : ratio(cpu(v), cpu('haproxy')),
        v === 'kernel' ? '—' : ratio(cpu(v), cpu('nginx')),
      ];
    }),
  };
  const h2Label: Record<H2Path, string> = {
    kernel: 'kernel only (L3/L4 policy, no proxy)',
    membrane: `${labelOf(iso.variant)}, h2c upstream`,
    haproxy: 'HAProxy 2.6, 1 thread, same ACL, h2c upstream',
    nginx: 'nginx 1.22, 1 worker, same ACL, HTTP/1.1 upstream',
  };
  const h2Rps = (p: H2Path): number => (h2.runs.has(p) ? median(h2.runs.get(p)!.map((r) => r.rps)) : NaN);
  const h2Cpu = (p: H2Path): number => (h2.cpu.has(p) ? median(h2.cpu.get(p)!) : NaN);
  const h2Table: BenchTable = {
    title: `HTTP/2 (h2c, prior knowledge): h2load -c8 -m16 (client pod) → ${RULE.method} ${RULE.path} → nginx (server pod); medians of ${ctx.runs} run(s)`,
    header: ['path', 'saturated req/s', '× kernel', '× HAProxy', '× nginx', 'proxy CPU µs/req', '× HAProxy', '× nginx', 'failed or non-2xx'],
    rows: h2.pending
      ? [['kernel only / Membrane L7 / peers', 'pending', '—', '—', '—', '—', '—', '—', h2.pending]]
      : [
          ...h2.paths.map((p) => {
            const rs = h2.runs.get(p)!;
            const proxy = p !== 'kernel';
            return [
              h2Label[p],
              spread(rs.map((r) => r.rps), k),
              p === 'kernel' ? '1.00×' : ratio(h2Rps(p), h2Rps('kernel')),
              p === 'haproxy' ? '1.00×' : ratio(h2Rps(p), h2Rps('haproxy')),
              p === 'nginx' ? '1.00×' : ratio(h2Rps(p), h2Rps('nginx')),
              proxy ? spread(h2.cpu.get(p)!, us) : '—',
              !proxy ? '—' : p === 'haproxy' ? '1.00×' : ratio(h2Cpu(p), h2Cpu('haproxy')),
              !proxy ? '—' : p === 'nginx' ? '1.00×' : ratio(h2Cpu(p), h2Cpu('nginx')),
              String(rs.reduce((a, r) => a + r.failed + r.non2xx, 0)),
            ];
          }),
          ...[...h2.skipped].map(([p, why]) => [h2Label[p], 'not measured', '—', '—', '—', '—', '—', '—', why]),
        ],
  };

  const mem = all.filter((v) => v.startsWith('membrane'));
  const one = mem[0]!;
  const busyShare = median(machineBusy.get(one)!);
  const satCpuShare = (med(one, (x) => x.satCpu) * sat(one)) / 1e6; // cores the agent used at saturation
  const limitCommon = `at saturation the agent used ${(satCpuShare * 100).toFixed(0)}% of one core (${threads} threads) while the machine was ${(100 - busyShare * 100).toFixed(0)}% idle${profile ? `; CPU profiles of the agent's threads at saturation: ${profile}` : ''}`;
  const addedP99 = p99(one) - p99('kernel');
  const targets: BenchTarget[] = [
    {
      target: `proxy CPU ≤ 100 µs per request at ${RATE} req/s with access log and flows on (HAProxy ${us(cpu('haproxy'))} µs)`,
      figure: `${labelOf(one)}: ${us(cpu(one))} µs/req`,
      met: cpu(one) <= 100,
      limit: limitCommon,
    },
    {
      target: `p99 added latency < 2 ms at ${RATE} req/s (over kernel only)`,
      figure: `${ms(p99(one))} ms − ${ms(p99('kernel'))} ms = ${ms(addedP99)} ms (at ${k(achieved(one))} and ${k(achieved('kernel'))} req/s achieved)`,
      // A kernel-only p99 of 2 ms or more is the machine's noise, not the path (the issue measured
      // 0.17 ms here): the difference cannot then show a 2 ms bound either way.
      met: addedP99 < 2 && p99('kernel') < 2,
      limit:
        p99('kernel') >= 2
          ? `not judged: the kernel-only p99 was ${ms(p99('kernel'))} ms, so other work on the machine dominated the tail; ${limitCommon}`
          : limitCommon,
    },
    {
      target: 'saturated, one proxy worker: ≥ 18k req/s (3× the issue\'s 5.9k)',
      figure: `${k(sat(one))} req/s (${ratio(sat(one), sat('haproxy'))} HAProxy)`,
      met: sat(one) >= 18_000,
      limit: limitCommon,
    },
    // The same two targets against the peer measured in this run: the issue's figures are of a
    // machine where HAProxy did 72k req/s at 40 µs/request, and this machine's speed varies
    // between sessions by more than the targets' margins (HAProxy saturated from 24.8k to 72k
    // req/s on different days), so the ratio to the peer is the comparable figure.
    {
      target: `relative to HAProxy in the same run (the two targets above on the issue's machine, where HAProxy did ${k(ISSUE_HAPROXY.rps)} req/s at ${ISSUE_HAPROXY.cpuUs} µs/request): CPU per request ≤ ${(100 / ISSUE_HAPROXY.cpuUs).toFixed(2)}× HAProxy's`,
      figure: `${us(cpu(one))} µs ÷ ${us(cpu('haproxy'))} µs = ${ratio(cpu(one), cpu('haproxy'))}`,
      met: cpu(one) / cpu('haproxy') <= 100 / ISSUE_HAPROXY.cpuUs,
      limit: limitCommon,
    },
    {
      target: `relative to HAProxy in the same run: saturated, one proxy worker ≥ ${(18_000 / ISSUE_HAPROXY.rps).toFixed(2)}× HAProxy's req/s (18k ÷ ${k(ISSUE_HAPROXY.rps)})`,
      figure: `${k(sat(one))} ÷ ${k(sat('haproxy'))} = ${ratio(sat(one), sat('haproxy'))}`,
      met: sat(one) / sat('haproxy') >= 18_000 / ISSUE_HAPROXY.rps,
      limit: limitCommon,
    },
  ];
  if (mem.length > 1) {
    const two = mem[1]!;
    targets.push({
      target: 'throughput grows with proxy workers (1 → 2 workers on the cores that are free)',
      figure: `${k(sat(one))} → ${k(sat(two))} req/s (${ratio(sat(two), sat(one))})`,
      met: sat(two) > sat(one) * 1.1,
      limit: `with 2 workers the machine was ${(100 - median(machineBusy.get(two)!) * 100).toFixed(0)}% idle at saturation; wrk (2 threads), the backend nginx and the proxies share the 2 cores`,
    });
  } else {
    targets.push({
      target: 'throughput grows with proxy workers (1 and 2 workers)',
      figure: 'not measured: this agent has no --proxy-workers',
      met: false,
      limit: 'the proxy runs on the agent\'s one event loop (no --proxy-workers option yet)',
    });
  }
  const isoR = isoReport(iso, name(iso.variant), labelOf(iso.variant), mem.length > 1 ? "the proxy's process" : "the proxy's process and event loop");
  rows.push(...isoR.rows);
  targets.push(isoR.target);
  const o11y = obsReport(ctx, b, obs, labelOf(iso.variant), cpu(one));
  rows.push(...o11y.rows);
  targets.push(...o11y.targets);

  const errs = all.flatMap((v) => [...m.get(v)!.sat, ...m.get(v)!.paced].map((r) => ({ v, e: r.errors + r.non2xx }))).filter((x) => x.e > 0);
  const notes = [
    ...b.notes,
    `Load: wrk -t2 -c64 for saturation (${b.seconds.sat} s per run), wrk -t1 -c32 paced to ${RATE} req/s by a delay() script for p99 and CPU (${b.seconds.paced} s per run); the achieved rate is in the table. CPU per request: utime+stime of the proxy's process tree (/proc/PID/stat) over the run ÷ requests (Membrane: the whole agent, control plane included).`,
    'HAProxy and the nginx proxy write no access log; Membrane writes its access log (JSON lines, file) and keeps flows. Every proxy keeps connections to the backend alive.',
    `The agent runs under Node.js ${nodeVersion(AGENT_NODE)}${process.env.MEMBRANE_BENCH_NODE ? ' (MEMBRANE_BENCH_NODE)' : ''}.`,
    'Figures on a machine shared with other work are noisy; compare ratios within one run rather than across runs.',
    ...(h2.pending
      ? [h2.pending]
      : [
          `HTTP/2 peers: HAProxy takes h2c with prior knowledge (\`bind … proto h2\`) and forwards over h2c to the backend's :${PORT.h2l4} (\`server … proto h2\`, \`http-reuse always\`); nginx takes h2c (\`listen … http2\`) and forwards over HTTP/1.1 keep-alive to :${PORT.l4} (nginx 1.22's proxy_pass has no HTTP/2 upstream); Membrane forwards over h2c to :${PORT.h2l7} (one upstream session per source identity and destination). CPU per request: the proxy's process tree over the saturated run ÷ requests done.`,
          ...[...h2.skipped].map(([p, why]) => `HTTP/2 ${p} not measured: ${why}.`),
        ]),
    ...o11y.notes,
    ...(errs.length ? [`wrk reported errors or non-2xx answers: ${errs.map((x) => `${x.v} ${x.e}`).join(', ')}.`] : []),
    ...isoR.notes,
  ];
  return { rows, tables: [main, h2Table, o11y.table, isoR.table], targets, notes };
}

export const benchmark: Benchmark = {
  name: 'http',
  title: 'HTTP through the transparent L7 path vs kernel only, HAProxy and nginx',
  packages: ['wrk', 'nginx', 'haproxy', 'nghttp2-client', 'curl', 'iproute2'],
  run: runHttp,
};
