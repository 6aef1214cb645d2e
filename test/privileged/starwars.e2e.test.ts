/**
 * The Star Wars demo scenario against the real kernel datapath: TCX programs on the pods'
 * veths, the transparent HTTP proxy, policies from the watched directory, curl in the pods.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNode, eventually, privilegedSkipReason, starwarsLab, RULE1_L3L4, RULE1_L7, ROOT, CLI } from './harness.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const skip = privilegedSkipReason();
const P = 'sw';
const URL_LAND = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const URL_EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';

describe.skipIf(skip !== null)('Star Wars demo end to end' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;

  beforeAll(async () => {
    TestNode.sweep('starwars', [`${P}-ds`, `${P}-tie`, `${P}-xw`]);
    node = new TestNode('starwars');
    await node.startAgent();
    await node.labUp(starwarsLab(P, '10.211'));
  });

  afterAll(async () => {
    await node?.cleanup();
  });

  it('without policy every ship lands', () => {
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    expect(node.curl(`${P}-tie`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    const viaCli = node.cli(['lab', 'exec', `${P}-xw`, '--', 'curl', '-s', '-XPOST', URL_LAND]);
    expect(viaCli).toMatchObject({ status: 0, stdout: 'Ship landed\n' });
    const list = node.cli(['endpoint', 'list']);
    expect(list.stdout).toMatch(/ENDPOINT\s+POLICY \(ingress\)\s+POLICY \(egress\)\s+IDENTITY/);
    expect(list.stdout).not.toContain('Enabled');
  });

  it('L3/L4 rule1: tiefighter lands, xwing is dropped in the kernel, deathstar ingress is enforced', async () => {
    const imp = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/starwars/sw_l3_l4_policy.yaml')]);
    expect(imp.stderr).toBe('');
    expect(imp.stdout).toContain('Imported rule1');
    expect(node.curl(`${P}-tie`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    const xw = node.curl(`${P}-xw`, 'POST', URL_LAND);
    expect(xw.timedOut).toBe(true);

    const eps = await node.client.request<{ name: string; identity: number; ingressEnforcement: boolean; egressEnforcement: boolean }[]>('GET', '/v1/endpoints');
    expect(eps.map((e) => [e.name, e.ingressEnforcement, e.egressEnforcement]).sort()).toEqual(
      [[`${P}-ds`, true, false], [`${P}-tie`, false, false], [`${P}-xw`, false, false]].sort(),
    );
    const table = node.cli(['endpoint', 'list']).stdout;
    const dsLine = table.split('\n').find((l) => l.includes('k8s:class=deathstar'));
    expect(dsLine).toMatch(/Enabled\s+Disabled/);

    // `policy trace` without --policy explains the verdict with the policy the agent enforces.
    const denied = node.cli(['policy', 'trace', '--src', 'org=alliance,class=xwing', '--dst', 'org=empire,class=deathstar', '--dport', '80']);
    expect(denied.status).toBe(1);
    expect(denied.stdout.trim().split('\n').at(-1)).toBe('Final verdict: DENIED');
    const allowed = node.cli(['policy', 'trace', '--src', 'org=empire,class=tiefighter', '--dst', 'org=empire,class=deathstar', '--dport', '80', '-o', 'json']);
    expect(allowed.status).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ verdict: 'allowed', redirect: null, dropReason: null });
    // A pod's address is that pod: the deathstar's ingress policy judges it, as it judges the packets.
    const byAddress = node.cli(['policy', 'trace', '--src', 'org=alliance,class=xwing', '--dst-cidr', node.podIp(`${P}-ds`), '--dport', '80']);
    expect(byAddress.stdout).toContain(`${node.podIp(`${P}-ds`)} is the address of endpoint default/${P}-ds`);
    expect(byAddress.stdout.trim().split('\n').at(-1)).toBe('Final verdict: DENIED');
    const fromAddress = node.cli(['policy', 'trace', '--src-cidr', node.podIp(`${P}-tie`), '--dst', 'org=empire,class=deathstar', '--dport', '80']);
    expect(fromAddress.stdout.trim().split('\n').at(-1)).toBe('Final verdict: ALLOWED');
    // …and it is named by the identity the agent gave it, the number `endpoint list` and the flows show.
    const idOf = (name: string): number | undefined => eps.find((e) => e.name === name)?.identity;
    expect(fromAddress.stdout).toContain(`source identity ${idOf(`${P}-tie`)}: `);
    expect(byAddress.stdout).toContain(`destination identity ${idOf(`${P}-ds`)}: `);

    const drops = await node.client.request<{ verdict: string; drop_reason_desc?: string; source: { pod_name: string } }[]>(
      'GET',
      `/v1/flows?last=50`,
    );
    expect(drops.some((f) => f.verdict === 'DROPPED' && f.drop_reason_desc === 'POLICY_DENIED' && f.source.pod_name === `${P}-xw`)).toBe(true);

    // issue-11: as `hubble observe --pod deathstar --verdict DROPPED` in the reference, each denied
    // SYN is its policy verdict (default deny: match none) and then its drop, the same packet.
    const dropped = node.cli(['observe', '--pod', `${P}-ds`, '--verdict', 'DROPPED', '--last', '100']);
    expect(dropped.status).toBe(0);
    const lines = dropped.stdout.trim().split('\n');
    const pair = /^(\w{3} [ \d]\d [\d:.]+: \S+\/sw-xw:\d+ \(ID:\d+\) <> \S+\/sw-ds:80 \(ID:\d+\)) policy-verdict:none INGRESS DENIED \(TCP Flags: SYN\)$/;
    const at = lines.findIndex((l) => pair.test(l));
    expect(at, dropped.stdout).toBeGreaterThanOrEqual(0);
    expect(lines[at + 1]).toBe(`${pair.exec(lines[at]!)![1]} Policy denied DROPPED (TCP Flags: SYN)`);
    const verdicts = node.cli(['observe', '--pod', `${P}-ds`, '--type', 'policy-verdict', '--verdict', 'DROPPED', '--last', '100']).stdout.trim().split('\n');
    expect(verdicts.length).toBeGreaterThan(0);
    expect(verdicts.every((l) => l.endsWith(' policy-verdict:none INGRESS DENIED (TCP Flags: SYN)')), verdicts.join('\n')).toBe(true);
  });

  it('L7 rule1: POST lands, PUT /v1/exhaust-port gets 403 Access denied and never reaches deathstar, xwing still dropped', async () => {
    const imp = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/starwars/sw_l3_l4_l7_policy.yaml')]);
    expect(imp.stdout).toContain('Imported rule1');
    // `import` replaces rule1 like `kubectl apply`: one policy file remains.
    expect(node.policyFiles()).toEqual(['sw_l3_l4_l7_policy.yaml']);

    expect(node.curl(`${P}-tie`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    const put = node.curl(`${P}-tie`, 'PUT', URL_EXHAUST);
    expect(put.status).toBe(403);
    expect(put.body).toBe('Access denied\r\n');
    expect(node.serverLog(`${P}-ds`)).toContain('/v1/request-landing');
    expect(node.serverLog(`${P}-ds`)).not.toContain('/v1/exhaust-port');
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).timedOut).toBe(true);

    // One access-log line per request, naming who asked, what, and why it was denied.
    expect(
      await eventually(() => node.accessLog().some((e) => e.path === '/v1/exhaust-port')),
    ).toBe(true);
    const denied = node.accessLog().find((e) => e.path === '/v1/exhaust-port');
    expect(denied).toMatchObject({ method: 'PUT', verdict: 'Denied', status: 403, source: { pod: `${P}-tie` }, destination: { pod: `${P}-ds` } });
    expect(node.accessLog().find((e) => e.path === '/v1/request-landing')).toMatchObject({ verdict: 'Forwarded', status: 200 });

    // Every verdict is counted: kernel drops by reason, proxy requests by outcome.
    const status = JSON.parse(node.cli(['status']).stdout) as { datapath: Record<string, number>; proxy: { denied: number; forwarded: number } };
    expect(status.datapath.drop_133).toBeGreaterThan(0);
    expect(status.datapath.forwarded).toBeGreaterThan(0);
    expect(status.proxy.denied).toBeGreaterThanOrEqual(1);
    expect(status.proxy.forwarded).toBeGreaterThanOrEqual(1);

    const observe = node.cli(['observe', '--last', '100', '--protocol', 'http']);
    expect(observe.status).toBe(0);
    expect(observe.stdout).toMatch(/http-request DROPPED \(HTTP\/1\.1 PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port\)/);
    expect(observe.stdout).toMatch(/http-request FORWARDED \(HTTP\/1\.1 POST http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/request-landing\)/);
    expect(observe.stdout).toMatch(/http-response FORWARDED \(HTTP\/1\.1 403 \d+ms \(PUT /);
  });

  it('observe --follow streams new flows as they happen', async () => {
    const follow = spawn(process.execPath, [CLI, '--api-socket', node.socket, 'observe', '--follow', '--last', '1', '--http-method', 'PUT'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // The stream opens with the last matching flow (an earlier PUT): once it shows, we are subscribed.
      expect(await eventually(() => out.includes('exhaust-port'), 10_000)).toBe(true);
      const drops = (): number => out.split('\n').filter((l) => l.includes('http-request DROPPED')).length;
      const seenBefore = drops();
      expect(node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status).toBe(403);
      expect(await eventually(() => drops() > seenBefore, 2000)).toBe(true);
      expect(out).not.toContain('POST');
    } finally {
      follow.kill('SIGINT');
    }
  });

  it('an invalid edit of a watched file is rejected and the last good policy stays in force', async () => {
    node.writePolicy('sw_l3_l4_l7_policy.yaml', RULE1_L7.replace('port: "80"', 'port: "eighty-thousand"').replace('toPorts', 'toPortz'));
    const rejected = await eventually(async () => {
      const r = await node.client.request<{ files: { problems: unknown[] }[] }>('GET', '/v1/policy');
      return r.files.some((f) => f.problems.length > 0);
    });
    expect(rejected).toBe(true);
    // The agent's log is written asynchronously: the line may land just after the API answered.
    expect(await eventually(() => /sw_l3_l4_l7_policy\.yaml: rule1: spec\.ingress\[0\]/.test(node.agentLog()), 3000)).toBe(true);
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).timedOut).toBe(true);
    expect(node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status).toBe(403);
    expect(node.curl(`${P}-tie`, 'POST', URL_LAND).body).toBe('Ship landed\n');
  });

  it('changing and deleting files in the watched directory changes enforcement within a second', async () => {
    // The deadline is checked on the kernel maps (what enforces), then traffic confirms it.
    type Dump = { policy: { proxyPort: number }[]; endpoints: Record<string, { ingressEnforced: boolean }> };
    const datapath = (): Promise<Dump> => node.client.request<Dump>('GET', '/v1/datapath');
    const ds = node.podIp(`${P}-ds`);
    expect((await datapath()).policy.some((e) => e.proxyPort !== 0)).toBe(true);

    node.writePolicy('sw_l3_l4_l7_policy.yaml', RULE1_L3L4);
    expect(await eventually(async () => !(await datapath()).policy.some((e) => e.proxyPort !== 0), 1000, 20)).toBe(true);
    expect(node.curl(`${P}-tie`, 'PUT', URL_EXHAUST).status).toBe(503);

    node.removePolicy('sw_l3_l4_l7_policy.yaml');
    expect(await eventually(async () => (await datapath()).endpoints[ds]?.ingressEnforced === false, 1000, 20)).toBe(true);
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    const list = node.cli(['endpoint', 'list']).stdout;
    expect(list).not.toContain('Enabled');
  });

  it('service-based rule1/rule2: tiefighter may egress to the deathstar service, xwing is denied by egressDeny (POLICY_DENY)', async () => {
    const imp = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/starwars/sw_l3_l4_policy_service.yaml')]);
    expect(imp.stdout).toContain('Imported rule1, rule2');
    expect(node.curl(`${P}-tie`, 'POST', URL_LAND).body).toBe('Ship landed\n');
    expect(node.curl(`${P}-xw`, 'POST', URL_LAND).timedOut).toBe(true);
    const flows = await node.client.request<{ verdict: string; drop_reason_desc?: string; traffic_direction: string; source: { pod_name: string } }[]>(
      'GET',
      '/v1/flows?last=30',
    );
    expect(flows.some((f) => f.source.pod_name === `${P}-xw` && f.drop_reason_desc === 'POLICY_DENY' && f.traffic_direction === 'EGRESS')).toBe(true);
    // issue-11: the deny rule's verdict names its match (the service's backends on port 80: L3-L4).
    const denials = node.cli(['observe', '--pod', `${P}-xw`, '--verdict', 'DROPPED', '--last', '30']).stdout;
    expect(denials).toMatch(/\/sw-xw:\d+ \(ID:\d+\) <> \S+:80 \(ID:\d+\) policy-verdict:L3-L4 EGRESS DENIED \(TCP Flags: SYN\)\n.*\/sw-xw:\d+ \(ID:\d+\) <> \S+:80 \(ID:\d+\) Policy denied by denylist DROPPED \(TCP Flags: SYN\)/);
    const trace = node.cli(['policy', 'trace', '--src', 'org=alliance,class=xwing', '--dst', 'org=empire,class=deathstar', '--dport', '80', '-o', 'json']);
    expect(trace.status).toBe(1);
    expect(JSON.parse(trace.stdout)).toMatchObject({ verdict: 'denied', dropReason: 'POLICY_DENY' });
    const eps = await node.client.request<{ name: string; identity: number; ingressEnforcement: boolean; egressEnforcement: boolean }[]>('GET', '/v1/endpoints');
    expect(eps.map((e) => [e.name, e.ingressEnforcement, e.egressEnforcement]).sort()).toEqual(
      [[`${P}-ds`, false, false], [`${P}-tie`, true, true], [`${P}-xw`, true, true]].sort(),
    );
  });
});
