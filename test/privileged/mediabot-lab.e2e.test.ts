/**
 * The mediabot lab (deploy/lab/mediabot.yaml) against the running agent, no policy: the pods
 * resolve through the real dnsmasq in the kube-dns pod, reach the world namespace (outside the
 * cluster, reserved:world) over HTTPS/HTTP/2 with certificates from the lab CA, never resolve
 * anything outside the lab, and `lab down` leaves nothing behind — also when `lab up` fails.
 * The lab is the shipped spec with this file's own names and subnet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { TestNode, privilegedSkipReason, starwarsLab, ROOT } from './harness.js';
import { labDown, labUp, parseLabSpec, readLabState, worldIfname, type EndpointRegistrar, type LabState } from '../../src/lab/index.js';
import { registrarFor } from '../../src/cli/lab-command.js';

const registrar = (node: TestNode): EndpointRegistrar => registrarFor(node.client);

const skip = privilegedSkipReason();
const ID = 'mediabotlab';
const SUBNET = '10.217';
const LAB = 'mbl-mediabot';
const BOT = 'mbl-bot';
const DNS = 'mbl-dns';
const WORLD = 'mbl-world';

/** deploy/lab/mediabot.yaml with this file's names and subnet (so it can run beside the demo). */
function labSpec(name = LAB, prefix = 'mbl'): string {
  const doc = parse(readFileSync(join(ROOT, 'deploy/lab/mediabot.yaml'), 'utf8').replaceAll('10.78', SUBNET)) as {
    metadata: { name: string };
    spec: { pods: { name: string }[]; world: { name: string } };
  };
  doc.metadata.name = name;
  const rename: Record<string, string> = { mediabot: `${prefix}-bot`, 'kube-dns': `${prefix}-dns` };
  for (const pod of doc.spec.pods) pod.name = rename[pod.name] ?? pod.name;
  doc.spec.world.name = `${prefix}-world`;
  return stringify(doc);
}

/** Runs a shell pipeline inside a pod, as `kubectl exec mediabot -- sh -c '…'`. */
function inPod(pod: string, script: string): { stdout: string; status: number } {
  const r = spawnSync('ip', ['netns', 'exec', pod, 'sh', '-c', script], { encoding: 'utf8' });
  return { stdout: r.stdout, status: r.status ?? -1 };
}

function headLine(pod: string, url: string, extra = ''): string {
  return inPod(pod, `curl -I -s --max-time 5 ${extra} ${url} | head -1`).stdout.trim();
}

function digStatus(pod: string, name: string): string {
  const out = inPod(pod, `dig +tries=1 +time=2 +noall +comments ${name} A`).stdout;
  return /status: (\w+)/.exec(out)?.[1] ?? `no answer: ${out}`;
}

/** Running, not a zombie waiting to be reaped. */
function alive(pid: number | null): boolean {
  if (!pid || !existsSync(`/proc/${pid}/stat`)) return false;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat[stat.lastIndexOf(')') + 2] !== 'Z';
}

/** Everything a lab could leave behind, for the "nothing left" checks. */
function leftovers(node: TestNode, state: LabState, prefix: string): string[] {
  const found: string[] = [];
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const ns of [`${prefix}-bot`, `${prefix}-dns`, `${prefix}-world`]) {
    if (netns.split('\n').some((l) => l.split(' ')[0] === ns)) found.push(`netns ${ns}`);
    if (existsSync(`/etc/netns/${ns}`)) found.push(`/etc/netns/${ns}`);
  }
  const links = spawnSync('ip', ['-n', node.netns, '-o', 'link'], { encoding: 'utf8' }).stdout;
  for (const ifname of [worldIfname(state.name), ...state.pods.map((p) => p.ifname)]) {
    if (links.includes(` ${ifname}@`) || links.includes(` ${ifname}:`)) found.push(`link ${ifname}`);
  }
  const routes = spawnSync('ip', ['-n', node.netns, 'route'], { encoding: 'utf8' }).stdout;
  if (routes.includes(`${SUBNET}.200.`)) found.push(`world routes: ${routes}`);
  if (state.pki && existsSync(state.pki)) found.push(`pki ${state.pki}`);
  for (const pid of [state.world?.pid ?? null, ...state.pods.map((p) => p.pid)]) if (alive(pid)) found.push(`process ${pid}`);
  return found;
}

describe.skipIf(skip !== null)('mediabot lab: real DNS server, world namespace, lab CA' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;

  beforeAll(async () => {
    TestNode.sweep(ID, [BOT, DNS, WORLD, 'mbf-bot', 'mbf-dns', 'mbf-world', 'mbs-ds', 'mbs-tie', 'mbs-xw']);
    node = new TestNode(ID);
    await node.startAgent();
    await node.labUp(labSpec());
  });

  afterAll(async () => {
    await node?.cleanup();
  });

  it('dig in mediabot resolves through the real dnsmasq in the kube-dns pod: several A records, CNAME chains', () => {
    const api = inPod(BOT, 'dig +short api.github.com');
    expect(api.status).toBe(0);
    expect(api.stdout.trim().split('\n').sort()).toEqual([`${SUBNET}.200.20`, `${SUBNET}.200.21`]);
    const support = inPod(BOT, 'dig +short support.github.com').stdout.trim().split('\n');
    expect(support.slice(0, 2)).toEqual(['github-support.edge.example.net.', 'edge-a.example.net.']);
    expect(support.slice(2).sort()).toEqual([`${SUBNET}.200.30`, `${SUBNET}.200.31`]);
    expect(inPod(BOT, 'dig +short www.github.com').stdout.trim().split('\n')).toEqual(['github.com.', `${SUBNET}.200.10`]);
    // The answer came from the kube-dns pod's dnsmasq, asked by mediabot's address.
    expect(node.serverLog(DNS)).toContain(`query[A] api.github.com from ${node.podIp(BOT)}`);
    const resolv = readFileSync(`/etc/netns/${BOT}/resolv.conf`, 'utf8');
    expect(resolv).toContain(`nameserver ${node.podIp(DNS)}`);
    expect(resolv).toContain('search default.svc.cluster.local svc.cluster.local cluster.local');
  });

  it('names outside the lab are refused and unknown names in its zones are NXDOMAIN, never forwarded', () => {
    expect(digStatus(BOT, 'example.org')).toBe('REFUSED');
    expect(digStatus(BOT, 'www.google.com')).toBe('REFUSED');
    expect(digStatus(BOT, 'nope.github.com')).toBe('NXDOMAIN');
    expect(digStatus(BOT, 'deathstar.default.svc.cluster.local')).toBe('NXDOMAIN');
    expect(digStatus(BOT, 'api.github.com')).toBe('NOERROR');
    expect(node.serverLog(DNS)).toContain('query[A] example.org');
    expect(node.serverLog(DNS)).not.toMatch(/forwarded/);
  });

  it('curl -I -s https://NAME | head -1 answers as in the reference: api 200, support 302, github.com 200 (HTTP/2 via ALPN)', () => {
    expect(headLine(BOT, 'https://api.github.com')).toBe('HTTP/2 200');
    expect(headLine(BOT, 'https://support.github.com')).toBe('HTTP/2 302');
    expect(headLine(BOT, 'https://github.com')).toBe('HTTP/2 200');
    expect(headLine(BOT, 'http://support.github.com')).toBe('HTTP/1.1 301 Moved Permanently');
    expect(headLine(BOT, 'https://api.github.com', '--http1.1')).toBe('HTTP/1.1 200 OK');
    // Through the CLI as a user would type it.
    const viaCli = node.cli(['lab', 'exec', BOT, '--', 'curl', '-I', '-s', 'https://support.github.com']);
    expect(viaCli.status).toBe(0);
    expect(viaCli.stdout.split('\n')[0]?.trim()).toBe('HTTP/2 302');
    expect(viaCli.stdout).toMatch(/^location: https:\/\/support\.github\.com\/contact\r?$/m);
    // The world saw the pod's own address: routed through the node namespace, not translated.
    const world = readFileSync(readLabState(LAB, node.labDir)?.world?.log ?? '', 'utf8');
    expect(world).toContain(`"host":"support.github.com","path":"/","from":"${node.podIp(BOT)}"`);
  });

  it('the certificate check is real: a name the lab CA did not sign fails verification', () => {
    const r = inPod(BOT, `curl -s -o /dev/null --max-time 5 --resolve evil.example:443:${SUBNET}.200.20 https://evil.example; echo $?`);
    expect(r.stdout.trim()).toBe('60'); // CURLE_PEER_FAILED_VERIFICATION
  });

  it('the world is outside the cluster: its addresses are not in the ipcache (reserved:world), the pods are', async () => {
    const dp = await node.client.request<{ ipcache: Record<string, unknown> }>('GET', '/v1/datapath');
    const keys = Object.keys(dp.ipcache).map((k) => k.replace(/\/32$/, ''));
    expect(keys).toContain(node.podIp(BOT));
    expect(keys).toContain(node.podIp(DNS));
    // The node's end of the world link is a node address (reserved:host); the world's end and
    // its sites are nowhere in the ipcache.
    expect(keys.filter((k) => k.startsWith(`${SUBNET}.200.`) || k === `${SUBNET}.255.2`)).toEqual([]);
  });

  it('lab down removes namespaces, links, routes, /etc/netns files, the CA and the servers', async () => {
    const state = readLabState(LAB, node.labDir);
    expect(state).not.toBeNull();
    if (!state) return;
    expect(leftovers(node, state, 'mbl').length).toBeGreaterThan(0);
    await labDown(state, null, node.labDir);
    node.lab = null;
    expect(leftovers(node, state, 'mbl')).toEqual([]);
    expect(readLabState(LAB, node.labDir)).toBeNull();
  });

  it('a lab up that fails part-way removes what it had built', async () => {
    const failing: EndpointRegistrar = {
      register: async () => {
        throw new Error('agent refused the endpoint');
      },
      deregister: async () => undefined,
      registerService: async () => undefined,
      deregisterService: async () => undefined,
    };
    const dir = mkdtempSync(join(tmpdir(), 'membrane-mbl-fail-'));
    try {
      const spec = parseLabSpec(labSpec('mbf-lab', 'mbf'), 'fail.yaml');
      await expect(labUp(spec, node.netns, failing, dir)).rejects.toThrow('agent refused the endpoint');
      const state: LabState = {
        name: 'mbf-lab', agentNetns: node.netns, services: [], pki: join(dir, 'mbf-lab-pki'),
        world: { netns: 'mbf-world', ifname: worldIfname('mbf-lab'), addresses: [], pid: null, log: null },
        pods: spec.pods.map((p) => ({ name: p.name, namespace: p.namespace, ip: '', ifname: `mb-${p.name}`, labels: {}, pid: null, log: null })),
      };
      expect(leftovers(node, state, 'mbf')).toEqual([]);
      expect(readLabState('mbf-lab', dir)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a lab without a DNS pod or world is built as before: hosts file only, the machine\'s resolver and CA store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'membrane-mbs-'));
    let state: LabState | null = null;
    try {
      state = await labUp(parseLabSpec(starwarsLab('mbs', '10.218'), 'sw.yaml'), node.netns, registrar(node), dir);
      expect(existsSync('/etc/netns/mbs-tie/hosts')).toBe(true);
      expect(existsSync('/etc/netns/mbs-tie/resolv.conf')).toBe(false);
      expect(existsSync('/etc/netns/mbs-tie/ssl')).toBe(false);
      expect(state.world).toBeNull();
      expect(node.curl('mbs-tie', 'POST', 'http://deathstar.default.svc.cluster.local/v1/request-landing').body).toBe('Ship landed\n');
    } finally {
      if (state) await labDown(state, registrar(node), dir);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(existsSync('/etc/netns/mbs-tie')).toBe(false);
  });
});
