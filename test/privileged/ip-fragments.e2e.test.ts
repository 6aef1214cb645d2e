/**
 * UDP datagrams larger than the MTU between two pods, through the real datapath (TCX programs on
 * the pods' veths): the sending pod's stack cuts a 4000-byte datagram into three fragments, only
 * the first of which carries the UDP header. With IPv4 fragment tracking (bpf/lib/frag.h, as
 * Cilium's --enable-ipv4-fragment-tracking) every fragment gets the verdict of its first: an
 * allowed L4 rule lets the whole datagram through both ways (the echo comes back whole), a rule
 * that does not allow the port drops every fragment by policy.
 *
 * The user trial that found the defect: `dig +bufsize=65000` asking for a big TXT answer through
 * the DNS proxy (a DNS rule redirects the client's UDP/53 to it). The answer, about 45 KB, comes
 * from the server pod to the proxy's upstream socket in fragments, and from the proxy to the
 * client in fragments: both legs pass on the connection their query opened.
 *
 * The other way, a query larger than the MTU to a port policy sends to the proxy is dropped in
 * the datapath with IP_FRAGMENTATION_NOT_SUPPORTED (157), visibly: bpf_sk_assign cannot deliver a
 * fragmented datagram to the proxy (reassembly orphans the fragments from the assigned socket).
 *
 * The servers and clients are python3 and dig processes this file starts inside the pods'
 * namespaces (the lab's dnsmasq has no TXT records: a small python responder serves them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAG_MAP, fragKey, fragL4 } from '../../src/datapath/maps/frag.js';
import { TestNode, eventually, privilegedSkipReason } from './harness.js';

const skip = privilegedSkipReason();
const ID = 'ipfrag';
const P = 'fg';
const PORT = 9999;
const SIZE = 4000;

const LAB = `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata:
  name: ${P}-lab
spec:
  subnet: "10.251"
  pods:
    - name: ${P}-server
      labels: {app: frag-server}
    - name: ${P}-client
      labels: {app: frag-client}
    - name: ${P}-dns
      labels: {app: frag-dns}
    - name: ${P}-asker
      labels: {app: frag-asker}
`;

const DNS_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: frag-dns
spec:
  endpointSelector: {matchLabels: {app: frag-asker}}
  egress:
    - toEndpoints: [{matchLabels: {app: frag-dns}}]
      toPorts:
        - ports: [{port: "53", protocol: UDP}]
          rules:
            dns: [{matchPattern: "*.frag.test"}]
`;

/** Answers every query with TXT_RRS TXT records of 255 bytes each: about 45 KB over UDP. */
const TXT_RRS = 168;
const DNS_SERVER = `
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 53))
print('ready', flush=True)
while True:
    q, peer = s.recvfrom(65535)
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    question = q[12:end + 5]
    rr = b'\\xc0\\x0c' + struct.pack('>HHIH', 16, 1, 60, 256) + bytes([255]) + bytes(ord('a') + i % 26 for i in range(255))
    head = q[0:2] + struct.pack('>HHHHH', 0x8180, 1, ${TXT_RRS}, 0, 0)
    s.sendto(head + question + rr * ${TXT_RRS}, peer)
`;

/** A valid query for pad.frag.test TXT, about 2950 bytes with EDNS padding; prints 'timeout' or what came back. */
const BIG_QUERY = `
import socket, struct, sys
name = b''.join(bytes([len(l)]) + l for l in b'pad.frag.test'.split(b'.')) + b'\\x00'
pad = b'\\x00' * 2900
opt = b'\\x00' + struct.pack('>HHIH', 41, 4096, 0, 4 + len(pad)) + struct.pack('>HH', 12, len(pad)) + pad
q = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 1) + name + struct.pack('>HH', 16, 1) + opt
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (sys.argv[1], 53))
try:
    print('got', len(s.recvfrom(65535)[0]))
except socket.timeout:
    print('timeout')
`;

const policy = (port: number): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: frag-udp
spec:
  endpointSelector: {matchLabels: {app: frag-server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: frag-client}}]
      toPorts: [{ports: [{port: "${port}", protocol: UDP}]}]
`;

/** Echoes every datagram back to its sender. */
const SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[1])))
print('ready', flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
`;

/** Sends one datagram of argv[3] bytes and prints how many bytes came back (0 = nothing in 2 s). */
const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
payload = bytes((i * 7) % 251 for i in range(int(sys.argv[3])))
s.sendto(payload, (sys.argv[1], int(sys.argv[2])))
try:
    data, _ = s.recvfrom(65535)
    print(len(data) if data == payload else -1)
except socket.timeout:
    print(0)
`;

describe.skipIf(skip !== null)('IPv4 fragments between pods' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;
  let server: ChildProcess | null = null;
  let dnsServer: ChildProcess | null = null;
  let clientScript = '';

  beforeAll(async () => {
    TestNode.sweep(ID, [`${P}-server`, `${P}-client`]);
    node = new TestNode(ID);
    await node.startAgent();
    await node.labUp(LAB);
    const serverScript = join(node.dir, 'udp-echo.py');
    clientScript = join(node.dir, 'udp-send.py');
    writeFileSync(serverScript, SERVER);
    writeFileSync(clientScript, CLIENT);
    server = spawn('ip', ['netns', 'exec', `${P}-server`, 'python3', serverScript, String(PORT)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    server.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    expect(await eventually(() => out.includes('ready'), 10_000)).toBe(true);
    const dnsScript = join(node.dir, 'dns-txt.py');
    writeFileSync(dnsScript, DNS_SERVER);
    dnsServer = spawn('ip', ['netns', 'exec', `${P}-dns`, 'python3', dnsScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    let dnsOut = '';
    dnsServer.stdout?.on('data', (d: Buffer) => (dnsOut += d.toString()));
    expect(await eventually(() => dnsOut.includes('ready'), 10_000)).toBe(true);
  }, 60_000);

  afterAll(async () => {
    // `ip netns exec` execs python3 in place: these PIDs are the servers themselves.
    for (const p of [server, dnsServer]) if (p?.pid && p.exitCode === null) process.kill(p.pid, 'SIGTERM');
    await node?.cleanup();
  });

  /** Bytes the client got back for one datagram of `size` bytes (0: no echo). */
  function echo(size: number): number {
    const r = spawnSync('ip', ['netns', 'exec', `${P}-client`, 'python3', clientScript, node.podIp(`${P}-server`), String(PORT), String(size)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return Number(r.stdout.trim());
  }

  function importPolicy(port: number): void {
    const file = join(node.dir, `frag-udp-${port}.yaml`);
    writeFileSync(file, policy(port));
    const r = node.cli(['policy', 'import', file]);
    expect(r.stderr).toBe('');
  }

  /** The datagrams the node's fragment map remembers, by destination port. */
  function trackedDatagrams(): { key: ReturnType<typeof fragKey.decode>; value: ReturnType<typeof fragL4.decode> }[] {
    const r = spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', join(node.pinRoot, FRAG_MAP)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const bytes = (hex: string[]): Uint8Array => Uint8Array.from(hex.map((h) => Number.parseInt(h, 16)));
    return (JSON.parse(r.stdout) as { key: string[]; value: string[] }[]).map((e) => ({ key: fragKey.decode(bytes(e.key)), value: fragL4.decode(bytes(e.value)) }));
  }

  it('the pods\' MTU makes a 4000-byte datagram three fragments', () => {
    const r = spawnSync('ip', ['-n', `${P}-client`, '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' });
    const mtu = (JSON.parse(r.stdout) as { mtu: number }[])[0]?.mtu ?? 0;
    expect(mtu).toBeGreaterThan(0);
    expect(mtu).toBeLessThan(SIZE);
  });

  it('an L4 rule allowing UDP/9999: a 4000-byte datagram crosses both ways whole, its fragments tracked by their first', async () => {
    importPolicy(PORT);
    // The policy is in force once a small datagram is echoed.
    expect(await eventually(() => echo(100) === 100, 10_000, 200)).toBe(true);
    expect(echo(SIZE)).toBe(SIZE);
    const serverIp = node.podIp(`${P}-server`);
    const tracked = trackedDatagrams().filter((e) => e.key.protocol === 17);
    // Request (client → server:9999) and echo (server:9999 → client) were both fragmented.
    expect(tracked.some((e) => e.value.dport === PORT && e.key.daddr === ipNumber(serverIp))).toBe(true);
    expect(tracked.some((e) => e.value.sport === PORT && e.key.saddr === ipNumber(serverIp))).toBe(true);
  });

  it('a rule that allows only UDP/9998: every fragment of the datagram is dropped by policy, none for want of its first', async () => {
    importPolicy(PORT - 1);
    expect(await eventually(() => echo(100) === 0, 10_000, 200)).toBe(true);
    expect(echo(SIZE)).toBe(0);
    const flows = await dropsTo(PORT, 4);
    const reasons = flows.map((f) => f.drop_reason_desc);
    // The small probes' datagrams (one packet each) and the big one's three fragments, all with the port.
    expect(reasons.length).toBeGreaterThanOrEqual(4);
    expect(new Set(reasons)).toEqual(new Set(['POLICY_DENIED']));
  });

  it('dig +bufsize=65000 through the DNS proxy: a 45 KB TXT answer reaches the client whole, in fragments both legs', async () => {
    const file = join(node.dir, 'frag-dns.yaml');
    writeFileSync(file, DNS_POLICY);
    expect(node.cli(['policy', 'import', file]).stderr).toBe('');
    const dnsIp = node.podIp(`${P}-dns`);
    let out = '';
    const answered = await eventually(() => {
      const r = spawnSync('ip', ['netns', 'exec', `${P}-asker`, 'dig', `@${dnsIp}`, '+bufsize=65000', '+notcp', '+tries=1', '+time=3', 'big.frag.test', 'TXT'], { encoding: 'utf8' });
      out = r.stdout;
      return /status: NOERROR/.test(out);
    }, 15_000, 500);
    expect(answered, out).toBe(true);
    expect(out).toMatch(new RegExp(`ANSWER: ${TXT_RRS},`));
    const size = Number(/MSG SIZE\s+rcvd: (\d+)/.exec(out)?.[1] ?? 0);
    expect(size).toBeGreaterThan(45_000);
    // It went through the proxy (the DNS rule's access log), not around it.
    expect(await eventually(() => node.accessLog().some((e) => JSON.stringify(e).includes('big.frag.test')), 5000)).toBe(true);
    const tracked = trackedDatagrams().filter((e) => e.key.protocol === 17 && e.key.saddr === ipNumber(dnsIp) && e.value.sport === 53);
    // Server → proxy's upstream socket, and proxy (answering as the server) → client.
    const askerIp = ipNumber(node.podIp(`${P}-asker`));
    expect(tracked.some((e) => e.key.daddr === askerIp)).toBe(true);
    expect(tracked.some((e) => e.key.daddr !== askerIp)).toBe(true);
  });

  it('a query larger than the MTU to the DNS proxy is dropped visibly (157), never sent around the proxy; small queries still work', async () => {
    const dnsIp = node.podIp(`${P}-dns`);
    const script = join(node.dir, 'big-query.py');
    writeFileSync(script, BIG_QUERY);
    const r = spawnSync('ip', ['netns', 'exec', `${P}-asker`, 'python3', script, dnsIp], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('timeout');
    let drops: { drop_reason_desc?: string; l4?: { UDP?: { destination_port: number } }; source?: { pod_name?: string } }[] = [];
    expect(await eventually(() => {
      drops = node.cli(['observe', '--last', '200', '--verdict', 'DROPPED', '--pod', `default/${P}-asker`, '-o', 'json']).stdout
        .split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { flow: (typeof drops)[number] }).flow)
        .filter((f) => f.drop_reason_desc === 'IP_FRAGMENTATION_NOT_SUPPORTED');
      return drops.length >= 2;
    }, 5000, 200)).toBe(true);
    expect(drops.every((f) => f.l4?.UDP?.destination_port === 53)).toBe(true);
    expect(node.accessLog().some((e) => JSON.stringify(e).includes('pad.frag.test'))).toBe(false);
    const small = spawnSync('ip', ['netns', 'exec', `${P}-asker`, 'dig', `@${dnsIp}`, '+tries=1', '+time=3', 'small.frag.test', 'TXT'], { encoding: 'utf8' });
    expect(small.stdout).toMatch(/status: NOERROR/);
  });

  async function dropsTo(port: number, atLeast: number): Promise<{ drop_reason_desc?: string }[]> {
    let flows: { drop_reason_desc?: string; event_type?: { type: number }; l4?: { UDP?: { destination_port: number } } }[] = [];
    await eventually(() => {
      const r = node.cli(['observe', '--last', '200', '--verdict', 'DROPPED', '-o', 'json']);
      flows = r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { flow: (typeof flows)[number] }).flow)
        .filter((f) => f.event_type?.type === 1 && f.l4?.UDP?.destination_port === port);
      return flows.length >= atLeast;
    }, 5000, 200);
    // Every drop of this node, whatever its port: no fragment may have been refused as one.
    const all = node.cli(['observe', '--last', '500', '--verdict', 'DROPPED', '-o', 'json']).stdout;
    expect(all).not.toContain('FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND');
    expect(all).not.toContain('IP_FRAGMENTATION_NOT_SUPPORTED');
    return flows;
  }
});

function ipNumber(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}
