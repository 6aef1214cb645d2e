/**
 * issue-11 metrics: the real Prometheus server (Debian's `prometheus`) scrapes the agent's
 * --prometheus-serve-addr every second, and the test asks Prometheus's HTTP API — what a user's
 * dashboard would — whether the kernel's drop counter moved after xwing's denied SYNs and the
 * L7 counters after tiefighter's denied PUT, in the Star Wars lab.
 *
 * Prometheus runs in the agent's node namespace (the agent listens on that namespace's
 * loopback), with a temp config and storage, and is killed by its PID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestNode, eventually, privilegedSkipReason, starwarsLab, ROOT } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'metrics';
const P = 'mt';
const SUBNET = '10.226';
const METRICS_ADDR = '127.0.0.1:9962';
const PROMETHEUS_ADDR = '127.0.0.1:9090';
const PROMETHEUS = '/usr/bin/prometheus';
const URL_LAND = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const URL_EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';

describe.skipIf(skip !== null)('issue-11 Prometheus scrapes the agent' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  let prometheus: ChildProcess | null = null;

  /** An instant PromQL query through Prometheus's HTTP API (curl in the node namespace). */
  function query(promql: string): { labels: Record<string, string>; value: number }[] {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', node.netns, 'curl', '-s', '--max-time', '5', '-G', `http://${PROMETHEUS_ADDR}/api/v1/query`, '--data-urlencode', `query=${promql}`],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) return [];
    const body = JSON.parse(r.stdout) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`Prometheus refused ${promql}: ${r.stdout}`);
    return (body.data?.result ?? []).map((x) => ({ labels: x.metric, value: Number(x.value[1]) }));
  }

  /** The value of a query that sums to one series, 0 when Prometheus has none yet. */
  const scalar = (promql: string): number => query(promql)[0]?.value ?? 0;

  beforeAll(async () => {
    expect(existsSync(PROMETHEUS), 'Debian package prometheus (scripts/setup.sh installs it)').toBe(true);
    TestNode.sweep(ID, [`${P}-ds`, `${P}-tie`, `${P}-xw`]);
    node = new TestNode(ID);
    await node.startAgent(['--prometheus-serve-addr', METRICS_ADDR]);
    await node.labUp(starwarsLab(P, SUBNET));

    const dir = join(node.dir, 'prometheus');
    mkdirSync(dir, { recursive: true });
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      ['global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:', '  - job_name: membrane', '    static_configs:', `      - targets: ["${METRICS_ADDR}"]`, ''].join('\n'),
    );
    // nsenter execs prometheus, so the child's PID is the server's.
    prometheus = spawn(
      'nsenter',
      [`--net=/run/netns/${node.netns}`, PROMETHEUS, `--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${PROMETHEUS_ADDR}`],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    const up = await eventually(() => scalar('up{job="membrane"}') === 1, 30_000, 250);
    expect(up, 'Prometheus scrapes the agent (up{job="membrane"} == 1)').toBe(true);
  }, 90_000);

  afterAll(async () => {
    if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus!.once('exit', r));
      process.kill(prometheus.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (prometheus.exitCode === null) process.kill(prometheus.pid, 'SIGKILL');
    }
    await node?.cleanup();
  });

  it('the agent exposes Cilium and Hubble metric names to Prometheus; forwarded packets count by direction', async () => {
    // No policy yet: xwing lands, and the datapath counts its packets as forwarded both ways.
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    const forwarded = (dir: string): number => scalar(`sum(cilium_forward_count_total{direction="${dir}"})`);
    expect(await eventually(() => forwarded('EGRESS') > 0 && forwarded('INGRESS') > 0, 15_000, 250)).toBe(true);
    const names = new Set(query('{job="membrane"}').map((s) => s.labels.__name__));
    for (const name of ['cilium_forward_bytes_total', 'cilium_endpoint', 'cilium_identity', 'cilium_policy', 'cilium_bpf_map_pressure', 'hubble_flows_processed_total']) {
      expect(names, name).toContain(name);
    }
    expect(scalar('cilium_endpoint')).toBe(3);
    expect(scalar('cilium_bpf_map_pressure{map_name="membrane_endpoints"}')).toBeGreaterThan(0);
  });

  it('a drop counter moves in Prometheus after xwing is denied by the L3/L4 rule', async () => {
    const dropped = 'sum(cilium_drop_count_total{reason="Policy denied",direction="INGRESS"})';
    const before = scalar(dropped);
    const imp = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/starwars/sw_l3_l4_l7_policy.yaml')]);
    expect(imp.stdout).toContain('Imported rule1');
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).timedOut).toBe(true);

    expect(await eventually(() => scalar(dropped) > before, 15_000, 250), `${dropped} rose above ${before}`).toBe(true);
    // The same drops, seen as flows: Hubble's drop counter by reason and protocol.
    expect(await eventually(() => scalar('sum(hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"})') > 0, 15_000, 250)).toBe(true);
  });

  it('L7 counters move after tiefighter PUT /v1/exhaust-port is denied and its POST lands', async () => {
    expect(node.curl(`${P}-tie`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    expect(node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status).toBe(403);

    const l7 = (rule: string): number => scalar(`sum(cilium_policy_l7_total{proxy_type="http",rule="${rule}"})`);
    const put403 = (): number => scalar('sum(hubble_http_requests_total{method="PUT",status="403",reporter="server"})');
    const upstream = (): number => scalar('sum(cilium_proxy_upstream_reply_seconds_count{protocol_l7="http",scope="upstreamTime"})');
    // Flows reach the agent's sink in batches from the proxy workers: wait for the responses too.
    expect(await eventually(() => l7('denied') >= 1 && l7('forwarded') >= 1 && put403() >= 1 && upstream() >= 1, 15_000, 250)).toBe(true);
    expect(l7('received')).toBe(l7('denied') + l7('forwarded'));
    expect(scalar('sum(hubble_policy_verdicts_total{match="l7/http",action="dropped"})')).toBeGreaterThanOrEqual(1);
    // Only forwarded requests went upstream: deathstar's reply times are in the histogram, the proxy's own 403 is not.
    expect(upstream()).toBe(l7('forwarded'));
  });
});
