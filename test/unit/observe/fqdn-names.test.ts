/**
 * Hubble's DNS names on L3/L4 flows (new-user trial, issue 8/11): a flow to an address the source
 * pod learned through DNS names it (`destination_names`, from that pod's own FQDN cache, without the
 * trailing dot, as Cilium's GetNamesOf gives Hubble), `observe` prints the name where Hubble does,
 * and `--fqdn` / `--from-fqdn` / `--to-fqdn` select by those names with Hubble's pattern grammar.
 */
import { describe, expect, it } from 'vitest';
import { eventToFlow, type FlowContextLookup } from '../../../src/agent/flows.js';
import type { Endpoint } from '../../../src/agent/endpoints.js';
import { flowEvent, type FlowEvent } from '../../../src/datapath/maps/events.js';
import { DnsCache } from '../../../src/fqdn/index.js';
import { isMembraneError } from '../../../src/errors/index.js';
import { compileFilters, filtersFromFlags, formatCompact, type Flow } from '../../../src/observe/index.js';
import { filterFromProto, flowFromProto, flowToProto } from '../../../src/hubble/index.js';
import { parseLabel } from '../../../src/policy/index.js';

const ipNum = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const BOT = { name: 'mediabot', namespace: 'default', ip: '10.78.1.2', id: 7, identity: 256, labels: ['k8s:class=mediabot'].map(parseLabel) } as unknown as Endpoint;
const OTHER = { name: 'other', namespace: 'default', ip: '10.78.1.3', id: 8, identity: 257, labels: ['k8s:class=other'].map(parseLabel) } as unknown as Endpoint;

function drop(saddr: string, daddr: string, dport: number): FlowEvent {
  return flowEvent.decode(
    flowEvent.encode({
      ts_ns: 1n, saddr: ipNum(saddr), daddr: ipNum(daddr), sport: 40000, dport, src_identity: 256, dst_identity: 2,
      ifindex: 3, endpoint_id: 7, proxy_port: 0, type: 1, verdict: 0, reason: 133, direction: 2, protocol: 6,
      tcp_flags: 0x02, icmp_type: 0, match_type: 0, trace_reason: 5, reserved_1: 0, reserved_2: 0,
    }),
  );
}

function setup(): { cache: DnsCache; ctx: FlowContextLookup } {
  const cache = new DnsCache();
  cache.update(BOT.id, 'Support.GitHub.com.', ['10.78.200.30', '10.78.200.31'], 30);
  cache.update(BOT.id, 'github-support.edge.example.net', ['10.78.200.30'], 30);
  // Another pod's lookup of another name for the same address is not mediabot's to show.
  cache.update(OTHER.id, 'mirror.example.org', ['10.78.200.30'], 30);
  const ctx: FlowContextLookup = {
    endpointByIp: (ip) => [BOT, OTHER].find((p) => p.ip === ip),
    identity: () => undefined,
    namesOf: (id, ip) => cache.lookupIp(ip, id).map((n) => n.replace(/\.$/, '')),
    nodeName: 'node-1',
  };
  return { cache, ctx };
}

function setupWith(name: string, ip: string): FlowContextLookup {
  const { cache, ctx } = setup();
  cache.update(BOT.id, name, [ip], 30);
  return ctx;
}

describe('flow names from the FQDN cache', () => {
  it('a drop to a learned address names it by the source pod’s lookups, and prints the name as Hubble does', () => {
    const { ctx } = setup();
    const flow = eventToFlow(drop(BOT.ip, '10.78.200.30', 443), ctx);
    expect(flow.destination_names).toEqual(['github-support.edge.example.net', 'support.github.com']);
    expect(flow.source_names).toBeUndefined();
    expect(formatCompact(flow)).toContain(
      'default/mediabot:40000 (ID:256) <> github-support.edge.example.net,support.github.com:443 (world) Policy denied DROPPED (TCP Flags: SYN)',
    );
    // The names cross the Hubble wire.
    expect(flowFromProto(flowToProto(flow)).destination_names).toEqual(flow.destination_names);
    // An address nobody looked up carries none; a pod another pod looked up by name carries its name.
    expect(eventToFlow(drop(BOT.ip, OTHER.ip, 80), setupWith('other.default.svc.cluster.local', OTHER.ip)).destination_names).toEqual(['other.default.svc.cluster.local']);
    expect(eventToFlow(drop(BOT.ip, '10.78.200.99', 443), ctx).destination_names).toBeUndefined();
    expect(eventToFlow(drop(BOT.ip, OTHER.ip, 80), ctx).destination_names).toBeUndefined();
  });

  it('an expired lookup no longer names the address', () => {
    let now = 1_000_000;
    const cache = new DnsCache({ now: () => now });
    cache.update(BOT.id, 'api.github.com', ['10.78.200.20'], 5);
    expect(cache.lookupIp('10.78.200.20', BOT.id)).toEqual(['api.github.com.']);
    expect(cache.lookupIp('10.78.200.20', OTHER.id)).toEqual([]);
    now += 6000;
    expect(cache.lookupIp('10.78.200.20', BOT.id)).toEqual([]);
  });
});

describe('--fqdn / --from-fqdn / --to-fqdn', () => {
  const { ctx } = setup();
  const out = eventToFlow(drop(BOT.ip, '10.78.200.31', 443), ctx);
  const reply = eventToFlow(drop('10.78.200.31', BOT.ip, 40000), ctx);
  const none = eventToFlow(drop(BOT.ip, '10.78.200.99', 443), ctx);
  const pass = (flags: [string, string?][], flows: Flow[] = [out, reply, none]): number[] => {
    const f = compileFilters(filtersFromFlags(flags));
    return flows.flatMap((flow, i) => (f(flow) ? [i] : []));
  };

  it('select by name with Hubble’s grammar: case, one trailing dot, * across characters', () => {
    expect(reply.source_names).toEqual(['support.github.com']);
    expect(pass([['to-fqdn', 'support.github.com']])).toEqual([0]);
    expect(pass([['to-fqdn', 'SUPPORT.GitHub.com.']])).toEqual([0]);
    expect(pass([['to-fqdn', '*.github.com']])).toEqual([0]);
    expect(pass([['to-fqdn', '*github*']])).toEqual([0]);
    expect(pass([['to-fqdn', 'github.com']])).toEqual([]);
    expect(pass([['from-fqdn', '*.github.com']])).toEqual([1]);
    expect(pass([['fqdn', '*.github.com']])).toEqual([0, 1]);
    expect(pass([['not'], ['fqdn', '*.github.com']])).toEqual([2]);
    // A flow without names never matches a name filter.
    expect(pass([['to-fqdn', '*']])).toEqual([0]);
  });

  it('bad patterns and Hubble’s conflicting flags are errors naming the flag', () => {
    for (const [flags, text] of [
      [[['to-fqdn', 'a b']], 'only alphanumeric ASCII characters'],
      [[['to-fqdn', 'a/b']], 'to-fqdn'],
      [[['fqdn', 'a'], ['to-ip', '10.0.0.1']], 'cannot be combined'],
      [[['from-fqdn', 'a'], ['from-pod', 'x']], 'cannot be combined'],
    ] as const) {
      let err: unknown;
      try {
        filtersFromFlags(flags as unknown as [string, string?][]);
      } catch (e) {
        err = e;
      }
      expect(isMembraneError(err, 'MEMBRANE_ERR_OBSERVE_FILTER')).toBe(true);
      expect((err as Error).message).toContain(text);
    }
  });

  it('a gRPC FlowFilter with source_fqdn / destination_fqdn is evaluated, not refused', () => {
    expect(filterFromProto({ destination_fqdn: ['*.github.com'] })).toEqual({ destination_fqdn: ['*.github.com'] });
  });
});
