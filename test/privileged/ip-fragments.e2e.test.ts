/**
 * UDP datagrams larger than the MTU between two pods, through the real datapath (TCX programs on
 * the pods' veths): the sending pod's stack cuts a 4000-byte datagram into three fragments, only
 * the first of which carries the UDP header. With IPv4 fragment tracking (bpf/lib/frag.h, as
 * Cilium's --enable-ipv4-fragment-tracking) every fragment gets the verdict of its first: an
 * allowed L4 rule lets the whole datagram through both ways (the echo comes back whole), a rule
 * that does not allow the port drops every fragment by policy.
 *
 * The server and client are python3 processes this file starts inside the pods' namespaces.
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
  }, 60_000);

  afterAll(async () => {
    if (server?.pid && server.exitCode === null) {
      // `ip netns exec` execs python3 in place: this PID is the server itself.
      process.kill(server.pid, 'SIGTERM');
    }
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
