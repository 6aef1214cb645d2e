/** `-o jsonpb`: proto3 JSON of the GetFlowsResponse, written as Go's json.Encoder writes hubble's. */
import { describe, expect, it } from 'vitest';
import { jsonpbEncoder, protoJsonOf } from '../../../src/cli/observe-jsonpb.js';
import { httpResponseFlow } from '../../../src/observe/index.js';
import { deathstarW, IPS, tiefighter } from '../observe/fixtures.js';

describe('-o jsonpb', () => {
  it('escapes <, > and & as encoding/json does, writes whole-millisecond times with 3 digits, 64-bit latency as a string', async () => {
    const encode = await jsonpbEncoder();
    const flow = httpResponseFlow({
      time: '2026-12-01T06:13:50.120Z',
      uuid: 'u1',
      source: tiefighter,
      destination: deathstarW,
      ip: { source: IPS.tiefighter, destination: IPS.deathstarW },
      sourcePort: 42746,
      destinationPort: 80,
      direction: 'INGRESS',
      nodeName: 'node-1',
      verdict: 'FORWARDED',
      latencyNs: 0,
      http: { code: 200, method: 'GET', url: 'http://a/?x=<b>&y=1', protocol: 'HTTP/1.1' },
    });
    const line = encode(flow);
    expect(line).toContain('"url":"http://a/?x=\\u003cb\\u003e\\u0026y=1"');
    expect(line).toContain('"time":"2026-12-01T06:13:50.120Z"');
    expect(line).toContain('"is_reply":true');
    expect(line).not.toContain('latency_ns');
    expect(JSON.parse(line)).toMatchObject({ flow: { l7: { type: 'RESPONSE', http: { code: 200, url: 'http://a/?x=<b>&y=1' } } }, node_name: 'node-1', time: '2026-12-01T06:13:50.120Z' });
    expect(encode({ ...flow, l7: { ...flow.l7, type: 'RESPONSE', latency_ns: 2 ** 40 } })).toContain('"latency_ns":"1099511627776"');
  });

  it('writes a FlowFilter with proto names, enums by name, zero values left out (--print-raw-filters)', async () => {
    const json = await protoJsonOf('flow.FlowFilter');
    expect(json({ source_pod: ['default/x'], verdict: ['DROPPED'], event_type: [{ type: 1, match_sub_type: true, sub_type: 0 }], reply: [] })).toBe(
      '{"source_pod":["default/x"],"verdict":["DROPPED"],"event_type":[{"type":1,"match_sub_type":true}]}',
    );
  });
});
