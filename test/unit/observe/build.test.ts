import { describe, expect, it } from 'vitest';
import {
  dropFlow,
  EVENT_TYPE,
  flowTime,
  httpRequestFlow,
  httpResponseFlow,
  l3l4Summary,
  policyVerdictFlow,
  tcpFlagsSummary,
} from '../../../src/observe/index.js';
import { deathstarW, tiefighter, xwing } from './fixtures.js';

const base = {
  source: xwing,
  destination: deathstarW,
  ip: { source: '10.0.1.11', destination: '10.0.1.20' },
  l4: { TCP: { source_port: 45706, destination_port: 80, flags: { SYN: true } } },
  direction: 'INGRESS' as const,
  nodeName: 'node-1',
};

describe('flow builders', () => {
  it('dropFlow: DROPPED, both drop reason fields, drop event type, unknown reply direction', () => {
    const f = dropFlow({ ...base, reason: 181, time: new Date('2024-04-05T21:03:18.803Z') });
    expect(f).toMatchObject({
      verdict: 'DROPPED',
      drop_reason: 181,
      drop_reason_desc: 'POLICY_DENY',
      event_type: { type: EVENT_TYPE.DROP, sub_type: 181 },
      Type: 'L3_L4',
      Summary: 'TCP Flags: SYN',
      time: '2024-04-05T21:03:18.803Z',
      IP: { source: '10.0.1.11', destination: '10.0.1.20', ipVersion: 'IPv4' },
      traffic_direction: 'INGRESS',
    });
    expect(f.is_reply).toBeUndefined();
    expect(f.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('policyVerdictFlow: allowed verdicts are not replies; denied ones carry the reason', () => {
    const allowed = policyVerdictFlow({ ...base, verdict: 'FORWARDED', matchType: 2 });
    expect(allowed).toMatchObject({ is_reply: false, policy_match_type: 2, event_type: { type: EVENT_TYPE.POLICY_VERDICT } });
    expect(allowed.drop_reason).toBeUndefined();
    const denied = policyVerdictFlow({ ...base, verdict: 'DROPPED', matchType: 0 });
    expect(denied).toMatchObject({ drop_reason: 133, drop_reason_desc: 'POLICY_DENIED' });
    expect(denied.is_reply).toBeUndefined();
  });

  it('http flows: request from the client, response swapped with is_reply and latency', () => {
    const exchange = {
      source: tiefighter,
      destination: deathstarW,
      ip: { source: '10.0.1.10', destination: '10.0.1.20' },
      sourcePort: 40000,
      destinationPort: 80,
      direction: 'EGRESS' as const,
      nodeName: 'node-1',
      proxyPort: 15001,
      traceContext: { parent: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' } },
      policies: [{ name: 'rule1' }],
    };
    const req = httpRequestFlow({ ...exchange, verdict: 'DROPPED', http: { method: 'PUT', url: 'http://d/x', protocol: 'HTTP/1.1' } });
    expect(req).toMatchObject({
      Type: 'L7',
      l7: { type: 'REQUEST' },
      is_reply: false,
      event_type: { type: EVENT_TYPE.ACCESS_LOG },
      l4: { TCP: { source_port: 40000, destination_port: 80 } },
      proxy_port: 15001,
      egress_denied_by: [{ name: 'rule1' }],
      Summary: 'HTTP/1.1 PUT http://d/x',
    });
    const res = httpResponseFlow({
      ...exchange,
      verdict: 'FORWARDED',
      latencyNs: 2_999_999,
      http: { code: 403, method: 'PUT', url: 'http://d/x', protocol: 'HTTP/1.1' },
    });
    expect(res).toMatchObject({
      source: deathstarW,
      destination: tiefighter,
      IP: { source: '10.0.1.20', destination: '10.0.1.10' },
      l4: { TCP: { source_port: 80, destination_port: 40000 } },
      is_reply: true,
      l7: { type: 'RESPONSE', latency_ns: 2_999_999, http: { code: 403 } },
      Summary: 'HTTP/1.1 403 2ms (PUT http://d/x)',
      trace_context: { parent: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' } },
    });
  });

  it('summaries and times', () => {
    expect(tcpFlagsSummary({ FIN: true, ACK: true, PSH: true })).toBe('ACK, FIN, PSH');
    expect(l3l4Summary({ UDP: { source_port: 1, destination_port: 53 } })).toBe('UDP');
    expect(l3l4Summary({ ICMPv4: { type: 3, code: 3 } })).toBe('ICMPv4 DestinationUnreachable(Port)');
    expect(l3l4Summary({ ICMPv6: { type: 128, code: 0 } })).toBe('ICMPv6 EchoRequest');
    expect(flowTime(1712350998803512345n)).toBe('2024-04-05T21:03:18.803512345Z');
    expect(flowTime('2024-04-05T21:03:18Z')).toBe('2024-04-05T21:03:18Z');
  });
});
