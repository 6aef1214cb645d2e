import { describe, expect, it } from 'vitest';
import { isMembraneError } from '../../../src/errors/index.js';
import {
  compileFilters,
  compileFilterSpec,
  compileLabelSelector,
  emptyEndpoint,
  EVENT_TYPE,
  parseLabel,
  parseNamespacedName,
  type FilterSpec,
  type Flow,
} from '../../../src/observe/index.js';
import { starWarsFlows } from './fixtures.js';

const flows = starWarsFlows();
const [landingReq, landingRes, , exhaustRes, , drop] = flows as [Flow, Flow, Flow, Flow, Flow, Flow];

/** Which of the six demo flows (by index) pass one group. */
function matches(spec: FilterSpec): number[] {
  const f = compileFilterSpec(spec);
  return flows.flatMap((flow, i) => (f(flow) ? [i] : []));
}

function rejects(spec: FilterSpec, criterion: string): void {
  let err: unknown;
  try {
    compileFilterSpec(spec);
  } catch (e) {
    err = e;
  }
  expect(isMembraneError(err, 'MEMBRANE_ERR_OBSERVE_FILTER')).toBe(true);
  expect((err as Error).message).toContain(criterion);
}

describe('one criterion per file', () => {
  it('empty spec matches everything', () => {
    expect(matches({})).toEqual([0, 1, 2, 3, 4, 5]);
    expect(matches({ verdict: [] })).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('verdict', () => {
    expect(matches({ verdict: ['DROPPED'] })).toEqual([2, 4, 5]);
    expect(matches({ verdict: ['FORWARDED', 'ERROR'] })).toEqual([0, 1, 3]);
    rejects({ verdict: ['dropped' as never] }, 'verdict');
  });

  it('uuid', () => {
    expect(matches({ uuid: [exhaustRes.uuid] })).toEqual([3]);
  });

  it('pod / from-pod / to-pod: [namespace/]prefix, bare name = default namespace', () => {
    expect(matches({ source_pod: ['tiefighter'] })).toEqual([0, 2]);
    expect(matches({ destination_pod: ['default/deathstar'] })).toEqual([0, 2, 4, 5]);
    expect(matches({ destination_pod: ['default/deathstar-b4b8ccfb5-f75xw'] })).toEqual([2, 4, 5]);
    expect(matches({ source_pod: ['default/'] })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(matches({ source_pod: ['kube-system/'] })).toEqual([]);
    expect(matches({ source_pod: ['other/tiefighter'] })).toEqual([]);
    rejects({ source_pod: [''] }, 'from-pod');
    expect(parseNamespacedName('x')).toEqual({ namespace: 'default', prefix: 'x' });
    expect(parseNamespacedName('ns/x')).toEqual({ namespace: 'ns', prefix: 'x' });
    // An endpoint without namespace and pod never matches a pod filter.
    const anon = { ...drop, source: emptyEndpoint(2) };
    expect(compileFilterSpec({ source_pod: ['default/'] })(anon)).toBe(false);
  });

  it('label / from-label / to-label: selectors over source:key=value labels', () => {
    expect(matches({ source_label: ['class=xwing'] })).toEqual([4, 5]);
    expect(matches({ source_label: ['k8s:org=empire'] })).toEqual([0, 1, 2, 3]);
    expect(matches({ source_label: ['k8s:org=empire,class=deathstar'] })).toEqual([1, 3]);
    expect(matches({ source_label: ['class in (xwing, tiefighter)'] })).toEqual([0, 2, 4, 5]);
    expect(matches({ source_label: ['class notin (xwing,tiefighter)'] })).toEqual([1, 3]);
    expect(matches({ destination_label: ['org!=empire'] })).toEqual([]);
    expect(matches({ source_label: ['!class'] })).toEqual([]);
    expect(matches({ source_label: ['reserved:class=xwing'] })).toEqual([]);
    expect(matches({ source_label: ['class==xwing', 'class=tiefighter'] })).toEqual([0, 2, 4, 5]);
    rejects({ source_label: ['class in (a'] }, 'from-label');
    rejects({ destination_label: ['a=b=c'] }, 'to-label');
    expect(parseLabel('reserved:world')).toEqual({ source: 'reserved', key: 'world', value: '' });
    expect(parseLabel('app=a:b')).toEqual({ source: 'unspec', key: 'app', value: 'a:b' });
    expect(compileLabelSelector('reserved:world')([parseLabel('reserved:world')])).toBe(true);
  });

  it('identity', () => {
    expect(matches({ source_identity: [63406] })).toEqual([4, 5]);
    expect(matches({ destination_identity: [25698] })).toEqual([1, 3]);
    rejects({ source_identity: [-1] }, 'from-identity');
  });

  it('ip: exact or CIDR', () => {
    expect(matches({ source_ip: ['10.0.1.11'] })).toEqual([4, 5]);
    expect(matches({ destination_ip: ['10.0.1.20/31'] })).toEqual([0, 2, 4, 5]);
    expect(matches({ source_ip: ['10.0.0.0/8'] })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(matches({ source_ip: ['2001:db8::/32'] })).toEqual([]);
    rejects({ source_ip: ['10.0.0.300'] }, 'from-ip');
    rejects({ destination_ip: ['10.0.0.0/33'] }, 'to-ip');
  });

  it('port', () => {
    expect(matches({ destination_port: ['80'] })).toEqual([0, 2, 4, 5]);
    expect(matches({ source_port: ['80'] })).toEqual([1, 3]);
    expect(matches({ source_port: ['44396', '45706'] })).toEqual([2, 4, 5]);
    rejects({ source_port: ['65536'] }, 'from-port');
    rejects({ destination_port: ['http'] }, 'to-port');
  });

  it('type (event type, optional sub-type)', () => {
    expect(matches({ event_type: [{ type: EVENT_TYPE.ACCESS_LOG }] })).toEqual([0, 1, 2, 3]);
    expect(matches({ event_type: [{ type: EVENT_TYPE.DROP }] })).toEqual([5]);
    expect(matches({ event_type: [{ type: EVENT_TYPE.POLICY_VERDICT }, { type: EVENT_TYPE.DROP }] })).toEqual([4, 5]);
    expect(matches({ event_type: [{ type: EVENT_TYPE.DROP, sub_type: 181, match_sub_type: true }] })).toEqual([]);
    expect(matches({ event_type: [{ type: EVENT_TYPE.DROP, sub_type: 133, match_sub_type: true }] })).toEqual([5]);
  });

  it('protocol: L4 and L7, case-insensitive', () => {
    expect(matches({ protocol: ['http'] })).toEqual([0, 1, 2, 3]);
    expect(matches({ protocol: ['TCP'] })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(matches({ protocol: ['udp', 'icmp'] })).toEqual([]);
    rejects({ protocol: ['quic'] }, 'protocol');
  });

  it('http-method, http-path (regex on the path), http-url, http-status (full or prefix)', () => {
    expect(matches({ http_method: ['put'] })).toEqual([2, 3]);
    expect(matches({ http_path: ['^/v1/exhaust'] })).toEqual([2, 3]);
    expect(matches({ http_path: ['landing$'] })).toEqual([0, 1]);
    expect(matches({ http_path: ['deathstar'] })).toEqual([]); // the host is not part of the path
    expect(matches({ http_url: ['deathstar\\.default'] })).toEqual([0, 1, 2, 3]);
    expect(matches({ http_status_code: ['403'] })).toEqual([3]);
    expect(matches({ http_status_code: ['2+'] })).toEqual([1]);
    expect(matches({ http_status_code: ['40+'] })).toEqual([3]);
    rejects({ http_status_code: ['4xx'] }, 'http-status');
    rejects({ http_path: ['(unclosed'] }, 'http-path');
    rejects({ http_method: ['GET'], event_type: [{ type: EVENT_TYPE.DROP }] }, 'http-method');
    expect(matches({ http_method: ['GET', 'POST'], event_type: [{ type: EVENT_TYPE.ACCESS_LOG }] })).toEqual([0, 1]);
  });

  it('dns_query: regexes searched in a DNS flow\'s query name, as Hubble\'s filterByDNSQueries; other flows never match', () => {
    const dns = (query: string): Flow => ({ ...landingReq, l7: { type: 'REQUEST', dns: { query } } }) as Flow;
    const named = [dns('api.github.com.'), dns('kube-dns.kube-system.svc.cluster.local.'), landingReq];
    const pass = (spec: FilterSpec): number[] => named.flatMap((flow, i) => (compileFilterSpec(spec)(flow) ? [i] : []));
    expect(pass({ dns_query: ['github'] })).toEqual([0]);
    expect(pass({ dns_query: ['^kube.*local\\.$'] })).toEqual([1]);
    expect(pass({ dns_query: ['github', 'cluster'] })).toEqual([0, 1]);
    expect(pass({ dns_query: ['.*'] })).toEqual([0, 1]);
    rejects({ dns_query: ['(unclosed'] }, 'dns-query');
  });

  it('drop-reason-desc', () => {
    expect(matches({ drop_reason_desc: ['POLICY_DENIED'] })).toEqual([4, 5]);
    expect(matches({ drop_reason_desc: ['POLICY_DENY'] })).toEqual([]);
    rejects({ drop_reason_desc: ['policy_denied'] }, 'drop-reason-desc');
  });

  it('traffic-direction, reply, node-name, trace-id', () => {
    expect(matches({ traffic_direction: ['INGRESS'] })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(matches({ traffic_direction: ['EGRESS'] })).toEqual([]);
    rejects({ traffic_direction: ['ingress' as never] }, 'traffic-direction');
    expect(matches({ reply: [true] })).toEqual([1, 3]);
    expect(matches({ reply: [false] })).toEqual([0, 2]); // drops have an unknown direction
    expect(matches({ node_name: ['node-*'] })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(matches({ node_name: ['node-2'] })).toEqual([]);
    const traced = { ...landingReq, trace_context: { parent: { trace_id: 'abc' } } };
    expect(compileFilterSpec({ trace_id: ['ABC'] })(traced)).toBe(true);
    expect(compileFilterSpec({ trace_id: ['abc'] })(landingRes)).toBe(false);
  });

  it('criteria in one group are AND-ed', () => {
    expect(matches({ verdict: ['DROPPED'], protocol: ['http'] })).toEqual([2]);
    expect(matches({ source_pod: ['xwing'], event_type: [{ type: EVENT_TYPE.DROP }] })).toEqual([5]);
  });
});

describe('compileFilters: any allow group, no deny group', () => {
  const idx = (set: Parameters<typeof compileFilters>[0]): number[] => {
    const f = compileFilters(set);
    return flows.flatMap((flow, i) => (f(flow) ? [i] : []));
  };

  it('no groups: everything passes', () => {
    expect(idx({})).toEqual([0, 1, 2, 3, 4, 5]);
    expect(idx({ allow: [], deny: [] })).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('allow groups are OR-ed, each must match in full', () => {
    expect(idx({ allow: [{ source_pod: ['xwing'], verdict: ['FORWARDED'] }, { http_status_code: ['403'] }] })).toEqual([3]);
    expect(idx({ allow: [{ source_pod: ['xwing'] }, { http_status_code: ['403'] }] })).toEqual([3, 4, 5]);
  });

  it('a matching deny group excludes the flow', () => {
    expect(idx({ allow: [{ protocol: ['http'] }], deny: [{ verdict: ['DROPPED'] }] })).toEqual([0, 1, 3]);
    expect(idx({ deny: [{ protocol: ['http'] }, { event_type: [{ type: EVENT_TYPE.POLICY_VERDICT }] }] })).toEqual([5]);
  });
});
