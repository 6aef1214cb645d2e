/**
 * The C policy lookup (bpf/lib/policy.h, run inside from_endpoint with BPF_PROG_TEST_RUN)
 * against the same case table the TypeScript twin (src/policy lookupPolicy) is tested with:
 * test/fixtures/policy/lookup-cases.json. Plus the fail-closed paths of the parser.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROP_REASON } from '../../src/codes/index.js';
import { Datapath, removePins } from '../../src/datapath/index.js';
import { privilegedSkipReason } from '../privileged/harness.js';
import { icmpQuote, ipv4Packet } from './packet.js';

const skip = privilegedSkipReason();
const cases = JSON.parse(
  readFileSync(fileURLToPath(new URL('../fixtures/policy/lookup-cases.json', import.meta.url)), 'utf8'),
) as {
  cases: {
    name: string;
    enforced: boolean;
    entries: { identity: number; protocol: number; port: number; portPrefixLen: number; verdict: 'allow' | 'deny' | 'redirect'; dropReason?: number }[];
    probes: { identity: number; protocol: number; port: number; expect: string; reason?: number }[];
  }[];
};

const PIN_ROOT = '/sys/fs/bpf/mbt-bpf-lookup';
const EP_IP = '10.216.0.2';
const EP_ID = 7;
const LO_IFINDEX = 1;
const REAL_PROTOCOLS = new Set([1, 6, 17, 132]);

describe.skipIf(skip !== null)('C policy lookup follows the shared case table' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let dp: Datapath;
  let sport = 20000;

  beforeAll(() => {
    removePins(PIN_ROOT);
    dp = Datapath.open({ pinRoot: PIN_ROOT });
  });
  afterAll(() => {
    dp?.close();
    removePins(PIN_ROOT);
  });

  /** Drop reason of one packet: the metrics slot that grew (0 = forwarded). */
  function outcome(packet: Uint8Array): { verdict: 'pass' | 'drop'; reason: number } {
    const before = dp.readMetrics();
    const r = dp.runProgram('from_endpoint', packet, { ifindex: LO_IFINDEX });
    const after = dp.readMetrics();
    let reason = -1;
    for (const [slot, v] of after) if (v.packets !== (before.get(slot)?.packets ?? 0n)) reason = slot;
    return { verdict: r.verdict, reason };
  }

  // Probes a packet can carry: a real protocol and a peer with an identity (identity 0 exists
  // only inside the lookup, never on the wire).
  const runnable = cases.cases
    .map((c) => ({ ...c, probes: c.probes.filter((p) => p.identity > 0 && REAL_PROTOCOLS.has(p.protocol)) }))
    .filter((c) => c.probes.length > 0);
  for (const c of runnable) {
    const probes = c.probes;
    it(c.name, () => {
      dp.upsertEndpoint(EP_IP, { ifindex: LO_IFINDEX, identity: 300, endpointId: EP_ID, ingressEnforced: false, egressEnforced: c.enforced });
      dp.syncEndpointPolicy(
        EP_ID,
        c.entries.map((e) => ({
          endpointId: EP_ID,
          egress: true,
          identity: e.identity,
          protocol: e.protocol,
          port: e.port,
          portPrefixLen: e.portPrefixLen,
          deny: e.verdict === 'deny',
          ...(e.dropReason !== undefined ? { dropReason: e.dropReason } : {}),
          proxyPort: e.verdict === 'redirect' ? 15999 : 0,
        })),
      );
      for (const [i, probe] of probes.entries()) {
        const dst = `10.216.${1 + (probe.identity % 250)}.${1 + i}`;
        dp.upsertIpcache(`${dst}/32`, probe.identity);
        const packet = ipv4Packet({ src: EP_IP, dst, protocol: probe.protocol, sport: sport++, dport: probe.port, icmpType: probe.port });
        const got = outcome(packet);
        // No proxy listens on 15999 here: a redirect fails closed with Cilium's SOCKET_LOOKUP_FAILED.
        const want =
          probe.expect === 'allow' || probe.expect === 'default-allow'
            ? { verdict: 'pass', reason: 0 }
            : probe.expect === 'redirect'
              ? { verdict: 'drop', reason: DROP_REASON.SOCKET_LOOKUP_FAILED }
              : probe.expect === 'deny'
                ? { verdict: 'drop', reason: probe.reason ?? DROP_REASON.POLICY_DENY }
                : { verdict: 'drop', reason: DROP_REASON.POLICY_DENIED };
        expect({ probe, ...got }).toEqual({ probe, ...want });
        dp.deleteIpcache(`${dst}/32`);
      }
    });
  }

  it('refuses what it cannot judge: spoofed source, an orphan fragment, IPv6, unknown L4, truncated headers', () => {
    dp.upsertEndpoint(EP_IP, { ifindex: LO_IFINDEX, identity: 300, endpointId: EP_ID, ingressEnforced: false, egressEnforced: false });
    dp.syncEndpointPolicy(EP_ID, []);
    expect(outcome(ipv4Packet({ src: EP_IP, dst: '10.216.9.9', protocol: 6, sport: 30001 }))).toEqual({ verdict: 'pass', reason: 0 });
    expect(outcome(ipv4Packet({ src: '10.216.0.99', dst: '10.216.9.9', protocol: 6 }))).toEqual({ verdict: 'drop', reason: 132 });
    // A later fragment whose first was never seen has no ports to be judged by (test/bpf/fragments.test.ts).
    expect(outcome(ipv4Packet({ src: EP_IP, dst: '10.216.9.9', protocol: 17, ipId: 0x5151, fragOff: 185, payloadOnly: 64 }))).toEqual({ verdict: 'drop', reason: 175 });
    expect(outcome(ipv4Packet({ src: EP_IP, dst: '10.216.9.9', protocol: 47 }))).toEqual({ verdict: 'drop', reason: 142 });
    const v6 = ipv4Packet({ src: EP_IP, dst: '10.216.9.9', protocol: 6 });
    new DataView(v6.buffer).setUint16(12, 0x86dd);
    expect(outcome(v6)).toEqual({ verdict: 'drop', reason: 139 });
    // The kernel's test runner refuses a truncated IP header itself; a truncated TCP header is ours.
    const truncated = ipv4Packet({ src: EP_IP, dst: '10.216.9.9', protocol: 6 }).subarray(0, 14 + 20 + 10);
    expect(outcome(truncated)).toEqual({ verdict: 'drop', reason: 135 });
  });

  it('is stateful: the reply of an allowed connection passes, a new connection the other way does not', () => {
    dp.upsertEndpoint(EP_IP, { ifindex: LO_IFINDEX, identity: 300, endpointId: EP_ID, ingressEnforced: true, egressEnforced: true });
    dp.upsertIpcache('10.216.8.8/32', 555);
    dp.syncEndpointPolicy(EP_ID, [{ endpointId: EP_ID, egress: true, identity: 555, protocol: 6, port: 80, portPrefixLen: 16, deny: false, proxyPort: 0 }]);
    expect(outcome(ipv4Packet({ src: EP_IP, dst: '10.216.8.8', protocol: 6, sport: 31000, dport: 80 })).verdict).toBe('pass');
    // The reply enters the endpoint through to_endpoint.
    const reply = ipv4Packet({ src: '10.216.8.8', dst: EP_IP, protocol: 6, sport: 80, dport: 31000, tcpFlags: 0x12 });
    expect(dp.runProgram('to_endpoint', reply, { ifindex: LO_IFINDEX }).verdict).toBe('pass');
    const reverse = ipv4Packet({ src: '10.216.8.8', dst: EP_IP, protocol: 6, sport: 31001, dport: 80 });
    expect(dp.runProgram('to_endpoint', reverse, { ifindex: LO_IFINDEX }).verdict).toBe('drop');
  });

  it('lets ICMP errors about a tracked connection through (port unreachable, path MTU), and no others', () => {
    dp.upsertEndpoint(EP_IP, { ifindex: LO_IFINDEX, identity: 300, endpointId: EP_ID, ingressEnforced: true, egressEnforced: true });
    dp.upsertIpcache('10.216.7.7/32', 556);
    dp.syncEndpointPolicy(EP_ID, [{ endpointId: EP_ID, egress: true, identity: 556, protocol: 17, port: 53, portPrefixLen: 16, deny: false, proxyPort: 0 }]);
    const query = ipv4Packet({ src: EP_IP, dst: '10.216.7.7', protocol: 17, sport: 32000, dport: 53 });
    expect(outcome(query).verdict).toBe('pass');
    const unreachable = ipv4Packet({ src: '10.216.7.7', dst: EP_IP, protocol: 1, icmpType: 3, icmpPayload: icmpQuote(query) });
    expect(dp.runProgram('to_endpoint', unreachable, { ifindex: LO_IFINDEX }).verdict).toBe('pass');
    // The same error about a packet of no connection is plain ICMP, which ingress policy denies.
    const stranger = ipv4Packet({ src: EP_IP, dst: '10.216.7.7', protocol: 17, sport: 32001, dport: 53 });
    const unrelated = ipv4Packet({ src: '10.216.7.7', dst: EP_IP, protocol: 1, icmpType: 3, icmpPayload: icmpQuote(stranger) });
    expect(dp.runProgram('to_endpoint', unrelated, { ifindex: LO_IFINDEX }).verdict).toBe('drop');
  });
});
