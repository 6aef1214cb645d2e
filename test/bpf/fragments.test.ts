/**
 * IPv4 fragment tracking in the kernel programs (bpf/lib/frag.h), as Cilium's
 * --enable-ipv4-fragment-tracking: the first fragment of a datagram records its ports, later
 * fragments are judged with them (conntrack, policy, proxy redirect), and a later fragment whose
 * first was never seen is dropped with FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND (175). Real
 * programs and maps, run with BPF_PROG_TEST_RUN; the outcome is read from the drop/forward
 * counters the programs keep, as `membrane metrics` shows them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROP_REASON } from '../../src/codes/index.js';
import { Datapath, removePins } from '../../src/datapath/index.js';
import { FRAG_MAP, FRAG_MAP_ENTRIES, fragKey, fragL4 } from '../../src/datapath/maps/frag.js';
import { privilegedSkipReason } from '../privileged/harness.js';
import { ipv4Packet } from './packet.js';

const skip = privilegedSkipReason();
const PIN_ROOT = '/sys/fs/bpf/mbt-bpf-frag';
const EP_IP = '10.218.0.2';
const EP_ID = 11;
const PEER = '10.218.9.9';
const PEER_ID = 555;
const LO_IFINDEX = 1;
const MF = 0x2000;
/** Fragment offset of the second fragment of a datagram cut at a 1500-byte MTU (1480 / 8). */
const SECOND = 185;

describe.skipIf(skip !== null)('IPv4 fragment tracking in the kernel programs' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let dp: Datapath;

  beforeAll(() => {
    removePins(PIN_ROOT);
    dp = Datapath.open({ pinRoot: PIN_ROOT });
  });
  afterAll(() => {
    dp?.close();
    removePins(PIN_ROOT);
  });

  /** The verdict of one packet and the counter slot that grew: 0 forwarded, else the drop reason. */
  function outcome(program: 'from_endpoint' | 'to_endpoint', packet: Uint8Array): { verdict: 'pass' | 'drop'; reason: number } {
    const before = dp.readMetrics();
    const r = dp.runProgram(program, packet, { ifindex: LO_IFINDEX });
    let reason = -1;
    for (const [slot, v] of dp.readMetrics()) if (v.packets !== (before.get(slot)?.packets ?? 0n)) reason = slot;
    return { verdict: r.verdict, reason };
  }
  const PASS = { verdict: 'pass', reason: 0 };
  const drop = (reason: number) => ({ verdict: 'drop', reason });

  /** The two fragments of one UDP datagram: the first with the UDP header, the second without. */
  function datagram(o: { src: string; dst: string; sport: number; dport: number; id: number; protocol?: number }): { first: Uint8Array; second: Uint8Array } {
    const protocol = o.protocol ?? 17;
    return {
      first: ipv4Packet({ src: o.src, dst: o.dst, protocol, sport: o.sport, dport: o.dport, ipId: o.id, fragOff: MF }),
      second: ipv4Packet({ src: o.src, dst: o.dst, protocol, ipId: o.id, fragOff: SECOND, payloadOnly: 200 }),
    };
  }

  /** The map's entries as the kernel holds them, read through bpftool from the pin. */
  function fragEntries(): { key: ReturnType<typeof fragKey.decode>; value: ReturnType<typeof fragL4.decode> }[] {
    const r = spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', join(PIN_ROOT, FRAG_MAP)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const bytes = (hex: string[]): Uint8Array => Uint8Array.from(hex.map((h) => Number.parseInt(h, 16)));
    return (JSON.parse(r.stdout) as { key: string[]; value: string[] }[]).map((e) => ({ key: fragKey.decode(bytes(e.key)), value: fragL4.decode(bytes(e.value)) }));
  }

  function egressPolicy(entries: { protocol: number; port: number; deny?: boolean; proxyPort?: number }[]): void {
    dp.upsertEndpoint(EP_IP, { ifindex: LO_IFINDEX, identity: 300, endpointId: EP_ID, ingressEnforced: true, egressEnforced: true });
    dp.upsertIpcache(`${PEER}/32`, PEER_ID);
    dp.syncEndpointPolicy(
      EP_ID,
      entries.map((e) => ({ endpointId: EP_ID, egress: true, identity: PEER_ID, protocol: e.protocol, port: e.port, portPrefixLen: 16, deny: e.deny ?? false, proxyPort: e.proxyPort ?? 0 })),
    );
  }

  it('the map is pinned under the pin root: an LRU hash of 8192 datagrams, as Cilium\'s default', () => {
    const r = spawnSync('bpftool', ['-j', 'map', 'show', 'pinned', join(PIN_ROOT, FRAG_MAP)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'lru_hash', max_entries: FRAG_MAP_ENTRIES, bytes_key: fragKey.size, bytes_value: fragL4.size });
  });

  it('an allowed datagram: its first fragment records the ports, the next one passes on them and counts on the same connection', () => {
    egressPolicy([{ protocol: 17, port: 5353 }]);
    const d = datagram({ src: EP_IP, dst: PEER, sport: 33001, dport: 5353, id: 0x1001 });
    expect(outcome('from_endpoint', d.first)).toEqual(PASS);
    expect(fragEntries()).toContainEqual({
      key: { daddr: 0x0ada0909, saddr: 0x0ada0002, id: 0x1001, protocol: 17, reserved_0: 0 },
      value: { sport: 33001, dport: 5353, icmp_type: 0, tcp_flags: 0, reserved_0: 0 },
    });
    expect(outcome('from_endpoint', d.second)).toEqual(PASS);
    const ct = dp.dumpConntrack().filter((e) => e.sport === 33001 && e.dport === 5353 && e.direction === 'egress');
    expect(ct.map((e) => e.packets)).toEqual([2n]);
  });

  it('a later fragment whose first was never seen is dropped with 175, also when only the protocol or the IP id differs', () => {
    egressPolicy([{ protocol: 17, port: 5353 }]);
    const d = datagram({ src: EP_IP, dst: PEER, sport: 33002, dport: 5353, id: 0x1002 });
    expect(outcome('from_endpoint', d.second)).toEqual(drop(DROP_REASON.FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND));
    expect(outcome('from_endpoint', d.first)).toEqual(PASS);
    const otherId = datagram({ src: EP_IP, dst: PEER, sport: 33002, dport: 5353, id: 0x1003 });
    expect(outcome('from_endpoint', otherId.second)).toEqual(drop(175));
    const otherProtocol = datagram({ src: EP_IP, dst: PEER, sport: 33002, dport: 5353, id: 0x1002, protocol: 6 });
    expect(outcome('from_endpoint', otherProtocol.second)).toEqual(drop(175));
    expect(outcome('from_endpoint', d.second)).toEqual(PASS);
  });

  it('every fragment of a denied datagram is denied by policy, by the same rule as its first', () => {
    egressPolicy([{ protocol: 17, port: 5353 }, { protocol: 17, port: 7000, deny: true }]);
    const byDefault = datagram({ src: EP_IP, dst: PEER, sport: 33003, dport: 5354, id: 0x1004 });
    expect(outcome('from_endpoint', byDefault.first)).toEqual(drop(DROP_REASON.POLICY_DENIED));
    expect(outcome('from_endpoint', byDefault.second)).toEqual(drop(DROP_REASON.POLICY_DENIED));
    const byRule = datagram({ src: EP_IP, dst: PEER, sport: 33003, dport: 7000, id: 0x1005 });
    expect(outcome('from_endpoint', byRule.first)).toEqual(drop(DROP_REASON.POLICY_DENY));
    expect(outcome('from_endpoint', byRule.second)).toEqual(drop(DROP_REASON.POLICY_DENY));
  });

  it('a datagram policy sends to a proxy is refused in fragments (157): reassembly would take it from the proxy socket', () => {
    egressPolicy([{ protocol: 17, port: 53, proxyPort: 15997 }]);
    // Unfragmented, the flow goes to the proxy (none listens here: it fails closed with 178).
    expect(outcome('from_endpoint', ipv4Packet({ src: EP_IP, dst: PEER, protocol: 17, sport: 33004, dport: 53 }))).toEqual(drop(DROP_REASON.SOCKET_LOOKUP_FAILED));
    const d = datagram({ src: EP_IP, dst: PEER, sport: 33004, dport: 53, id: 0x1006 });
    expect(outcome('from_endpoint', d.first)).toEqual(drop(DROP_REASON.IP_FRAGMENTATION_NOT_SUPPORTED));
    expect(outcome('from_endpoint', d.second)).toEqual(drop(DROP_REASON.IP_FRAGMENTATION_NOT_SUPPORTED));
  });

  it('a big answer: the fragments of a reply pass into the endpoint on its connection; a stranger\'s fragments do not', () => {
    egressPolicy([{ protocol: 17, port: 5353 }]);
    expect(outcome('from_endpoint', ipv4Packet({ src: EP_IP, dst: PEER, protocol: 17, sport: 33005, dport: 5353 }))).toEqual(PASS);
    const answer = datagram({ src: PEER, dst: EP_IP, sport: 5353, dport: 33005, id: 0x2001 });
    expect(outcome('to_endpoint', answer.first)).toEqual(PASS);
    expect(outcome('to_endpoint', answer.second)).toEqual(PASS);
    // Ingress is enforced with no rule: a datagram that is no reply is denied, all its fragments.
    const stranger = datagram({ src: PEER, dst: EP_IP, sport: 5353, dport: 33006, id: 0x2002 });
    expect(outcome('to_endpoint', stranger.first)).toEqual(drop(DROP_REASON.POLICY_DENIED));
    expect(outcome('to_endpoint', stranger.second)).toEqual(drop(DROP_REASON.POLICY_DENIED));
    const orphan = datagram({ src: PEER, dst: EP_IP, sport: 5353, dport: 33005, id: 0x2003 });
    expect(outcome('to_endpoint', orphan.second)).toEqual(drop(175));
  });

  it('a big ping: ICMP echo fragments carry the echo type and identifier of their first', () => {
    egressPolicy([{ protocol: 1, port: 8 }]);
    const first = ipv4Packet({ src: EP_IP, dst: PEER, protocol: 1, icmpType: 8, sport: 0x4242, ipId: 0x3001, fragOff: MF });
    const second = ipv4Packet({ src: EP_IP, dst: PEER, protocol: 1, ipId: 0x3001, fragOff: SECOND, payloadOnly: 100 });
    expect(outcome('from_endpoint', first)).toEqual(PASS);
    expect(outcome('from_endpoint', second)).toEqual(PASS);
    const reply = ipv4Packet({ src: PEER, dst: EP_IP, protocol: 1, icmpType: 0, sport: 0x4242, ipId: 0x3002, fragOff: MF });
    const replyRest = ipv4Packet({ src: PEER, dst: EP_IP, protocol: 1, ipId: 0x3002, fragOff: SECOND, payloadOnly: 100 });
    expect(outcome('to_endpoint', reply)).toEqual(PASS);
    expect(outcome('to_endpoint', replyRest)).toEqual(PASS);
  });

  it('a fragment from a spoofed source is refused before it can record anything', () => {
    egressPolicy([{ protocol: 17, port: 5353 }]);
    const spoofed = datagram({ src: '10.218.0.99', dst: PEER, sport: 33007, dport: 5353, id: 0x1007 });
    expect(outcome('from_endpoint', spoofed.first)).toEqual(drop(DROP_REASON.INVALID_SOURCE_IP));
    expect(fragEntries().some((e) => e.key.id === 0x1007)).toBe(false);
  });

  it('a restarted agent adopts the pinned map: a datagram begun before the restart completes after it; removing the pins removes it', () => {
    egressPolicy([{ protocol: 17, port: 5353 }]);
    const d = datagram({ src: EP_IP, dst: PEER, sport: 33008, dport: 5353, id: 0x1008 });
    expect(outcome('from_endpoint', d.first)).toEqual(PASS);
    const idBefore = spawnSync('bpftool', ['-j', 'map', 'show', 'pinned', join(PIN_ROOT, FRAG_MAP)], { encoding: 'utf8' }).stdout;
    dp.close();
    dp = Datapath.open({ pinRoot: PIN_ROOT });
    const idAfter = spawnSync('bpftool', ['-j', 'map', 'show', 'pinned', join(PIN_ROOT, FRAG_MAP)], { encoding: 'utf8' }).stdout;
    expect((JSON.parse(idAfter) as { id: number }).id).toBe((JSON.parse(idBefore) as { id: number }).id);
    expect(outcome('from_endpoint', d.second)).toEqual(PASS);
    dp.close();
    removePins(PIN_ROOT);
    expect(existsSync(join(PIN_ROOT, FRAG_MAP))).toBe(false);
    dp = Datapath.open({ pinRoot: PIN_ROOT });
  });
});
