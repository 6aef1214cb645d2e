/**
 * Regression tests (fix-defects) against the real agent: what a new user met on a fresh clone.
 * A second agent must not take over the first's API or Hubble socket (and must exit, leaving the
 * first's sockets in place); a start that fails part way tears down and exits 1; a restarted
 * proxy worker's requests stay in `membrane status` totals; `policy get` into a closed pipe ends
 * quietly; `policy import` says which policy of which file it replaced.
 *
 * Node namespaces mbt-newuser (the serving agent) and mbt-newuser2 (the refused ones), pods nu-*,
 * subnet 10.241.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, TestNode, eventually, privilegedSkipReason, RULE1_L7, starwarsLab } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'newuser';
const ID2 = 'newuser2';
const P = 'nu';
const PODS = [`${P}-ds`, `${P}-tie`, `${P}-xw`];
const URL_LAND = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
const HUBBLE_PORT = 14244;
const HUBBLE_NAME = 'mbt-newuser.hubble-grpc.cilium.io';

interface Status {
  proxy: { requests: number } | null;
  proxyWorkers: { index: number; state: string; restarts: number; counters: { http: { requests: number } } | null }[];
}

describe.skipIf(skip !== null)('new-user defects against the real agent' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  let other: TestNode;
  const hubbleSocket = (): string => join(dirname(node.socket), 'hubble.sock');

  /** A second agent in its own namespace and pin root; `args` say which sockets it wants. */
  function secondAgent(apiSocket: string, agentArgs: string[] = []): { status: number | null; signal: string | null; stderr: string } {
    mkdirSync(other.policyDir, { recursive: true });
    const r = spawnSync(
      process.execPath,
      [CLI, '--api-socket', apiSocket, 'agent', '--netns', other.netns, '--policy-dir', other.policyDir, '--state-dir', join(other.dir, 'state'),
        '--pin-root', other.pinRoot, '--proxy-workers', '2', '--http-proxy-port', '16001', '--dns-proxy-port', '16053', '--tls-proxy-port', '16443',
        ...agentArgs],
      // Before the fix a failed start never exited: the timeout ends it and the test fails.
      { encoding: 'utf8', timeout: 45_000 },
    );
    return { status: r.status, signal: r.signal, stderr: r.stderr };
  }

  beforeAll(async () => {
    TestNode.sweep(ID, PODS);
    TestNode.sweep(ID2, []);
    node = new TestNode(ID);
    other = new TestNode(ID2);
    for (const [name, cn] of [['server', HUBBLE_NAME], ['client', 'hubble-relay-client.hubble-grpc.cilium.io']]) {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${cn}`,
        '-addext', `subjectAltName=DNS:${cn}`, '-keyout', join(node.dir, `${name}-key.pem`), '-out', join(node.dir, `${name}.pem`)], { stdio: 'ignore' });
    }
    await node.startAgent([
      '--proxy-workers', '2', '--hubble-listen-address', `127.0.0.1:${HUBBLE_PORT}`, '--hubble-tls-cert-file', join(node.dir, 'server.pem'),
      '--hubble-tls-key-file', join(node.dir, 'server-key.pem'), '--hubble-tls-client-ca-files', join(node.dir, 'client.pem'),
    ]);
    await node.labUp(starwarsLab(P, '10.241'));
    node.writePolicy('rule1.yaml', RULE1_L7);
    expect(await eventually(() => node.curl(`${P}-tie`, 'PUT', 'http://deathstar.default.svc.cluster.local/v1/exhaust-port').status === 403, 10_000)).toBe(true);
  }, 90_000);

  afterAll(async () => {
    await other?.cleanup();
    await node?.cleanup();
  });

  it('a second agent on the same API socket is refused (MEMBRANE_ERR_API_LISTEN naming it), exits 1, and the first keeps its socket', () => {
    const ino = lstatSync(node.socket).ino;
    const r = secondAgent(node.socket);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`Error: the agent API cannot listen: ${node.socket}: another process is serving on this socket (is another agent running?)`);
    expect(r.stderr).toContain('[MEMBRANE_ERR_API_LISTEN]');
    expect(lstatSync(node.socket).ino).toBe(ino);
    expect(node.cli(['policy', 'get']).status).toBe(0);
  }, 60_000);

  it('a second agent on the same Hubble socket is refused (MEMBRANE_ERR_HUBBLE_LISTEN), tears down its own API socket, and the first still serves flows', () => {
    const ino = lstatSync(hubbleSocket()).ino;
    const ownSocket = join(other.dir, 'agent.sock');
    const r2 = secondAgent(ownSocket, ['--hubble-socket-path', hubbleSocket()]);
    expect(r2.signal).toBeNull();
    expect(r2.status).toBe(1);
    expect(r2.stderr).toContain(`Error: the Hubble observer cannot listen: ${hubbleSocket()}: another process is serving on this socket`);
    expect(existsSync(ownSocket)).toBe(false);
    expect(lstatSync(hubbleSocket()).ino).toBe(ino);
    const observed = node.cli(['observe', '--last', '1', '-o', 'json']);
    expect(observed.status).toBe(0);
    expect(observed.stdout.trim().split('\n')).toHaveLength(1);
  }, 120_000);

  it('a start that fails after the datapath, workers and API socket are up (TLS files unreadable) tears them down and exits 1', () => {
    const ownSocket = join(other.dir, 'tls-agent.sock');
    const r = secondAgent(ownSocket, [
      '--hubble-listen-address', '127.0.0.1:0', '--hubble-tls-cert-file', join(other.dir, 'missing.pem'),
      '--hubble-tls-key-file', join(other.dir, 'missing-key.pem'), '--hubble-tls-client-ca-files', join(other.dir, 'missing-ca.pem'),
    ]);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Error: the Hubble observer cannot listen: 127.0.0.1:0: TLS:');
    expect(r.stderr).toContain('[MEMBRANE_ERR_HUBBLE_LISTEN]');
    expect(existsSync(ownSocket)).toBe(false);
    expect(existsSync(join(other.dir, 'hubble.sock'))).toBe(false);
  }, 60_000);

  it('a killed proxy worker\'s requests stay in the `membrane status` totals', async () => {
    const status = async (): Promise<Status> => node.client.request<Status>('GET', '/v1/status');
    expect(await eventually(async () => (await status()).proxyWorkers.every((w) => w.state === 'ready'), 10_000)).toBe(true);
    for (let i = 0; i < 20; i++) expect(node.curl(`${P}-tie`, 'POST', URL_LAND).status).toBe(200);
    const before = await status();
    const total = before.proxy?.requests ?? 0;
    expect(total).toBeGreaterThanOrEqual(20);
    // The worker that served most: its share is what went missing.
    const busiest = [...before.proxyWorkers].sort((a, b) => (b.counters?.http.requests ?? 0) - (a.counters?.http.requests ?? 0))[0]!;
    expect(busiest.counters?.http.requests ?? 0).toBeGreaterThan(0);
    await node.client.request('POST', `/v1/proxy-workers/${busiest.index}/kill`);
    expect(
      await eventually(async () => {
        const w = (await status()).proxyWorkers[busiest.index]!;
        return w.state === 'ready' && w.restarts === 1;
      }, 10_000),
    ).toBe(true);
    expect((await status()).proxy?.requests).toBe(total);
    for (let i = 0; i < 5; i++) expect(node.curl(`${P}-tie`, 'POST', URL_LAND).status).toBe(200);
    expect((await status()).proxy?.requests).toBe(total + 5);
  }, 90_000);

  it('`membrane observe --server HOST:PORT --tls …` reads the agent\'s mutual-TLS listener (from inside its namespace)', () => {
    const observe = (extra: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync('nsenter', [`--net=/run/netns/${node.netns}`, process.execPath, CLI, 'observe', '--server', `127.0.0.1:${HUBBLE_PORT}`, '--last', '3', '-o', 'json', ...extra], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    const r = observe([
      '--tls', '--tls-ca-cert-files', join(node.dir, 'server.pem'), '--tls-client-cert-file', join(node.dir, 'client.pem'),
      '--tls-client-key-file', join(node.dir, 'client-key.pem'), '--tls-server-name', HUBBLE_NAME,
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const flows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { flow: { node_name: string } });
    expect(flows).toHaveLength(3);
    expect(flows.every((f) => f.flow.node_name === node.netns)).toBe(true);
    // Plaintext, as before the flags existed: the TLS listener does not answer it.
    const plain = observe([]);
    expect(plain.status).toBe(1);
    expect(plain.stdout).toBe('');
  }, 60_000);

  it('`membrane policy get` into a closed pipe (`| head -1`) ends quietly with 141, no unhandled EPIPE', async () => {
    const child = spawn(process.execPath, [CLI, '--api-socket', node.socket, 'policy', 'get'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(141);
  });

  it('`policy import` of a policy named like one in another file says what it replaced and from which file', () => {
    const cc = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/cloudcity/cc-door-ingress-security.yaml')]);
    expect(cc.status).toBe(0);
    const sw = node.cli(['policy', 'import', join(ROOT, 'deploy/lab/starwars/sw_l3_l4_l7_policy.yaml')]);
    expect(sw.status).toBe(0);
    const lines = sw.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^Imported rule1 \\(${node.policyDir}/sw_l3_l4_l7_policy\\.yaml\\), revision \\d+$`));
    // rule1.yaml (written by the test) and the cloudcity file both held a rule1.
    expect(lines.slice(1).sort()).toEqual(
      [
        `Replaced CiliumNetworkPolicy default/rule1 from ${node.policyDir}/cc-door-ingress-security.yaml (file removed: it held no other policy)`,
      ].sort(),
    );
    expect(node.policyFiles()).not.toContain('cc-door-ingress-security.yaml');
  });

  it('`policy import` overwriting a same-named file says which policies that file lost', () => {
    const dir = join(node.dir, 'import');
    mkdirSync(dir, { recursive: true });
    const doc = (name: string): string => `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: ${name}\nspec:\n  endpointSelector:\n    matchLabels: {class: xwing}\n  ingress: [{}]\n`;
    writeFileSync(join(dir, 'pair.yaml'), `${doc('keep-a')}---\n${doc('gone-b')}`);
    expect(node.cli(['policy', 'import', join(dir, 'pair.yaml')]).status).toBe(0);
    writeFileSync(join(dir, 'pair.yaml'), doc('keep-a'));
    const r = node.cli(['policy', 'import', join(dir, 'pair.yaml')]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').slice(1)).toEqual([`Removed CiliumNetworkPolicy default/gone-b: ${node.policyDir}/pair.yaml was overwritten by a file without it`]);
  });
});
