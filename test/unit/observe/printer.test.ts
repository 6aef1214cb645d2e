import { existsSync, readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  dict,
  dropFlow,
  emptyEndpoint,
  FlowPrinter,
  formatCompact,
  formatStampMilli,
  httpRequestFlow,
  json,
  traceFlow,
  withIPTranslation,
  withNodeName,
  withWriter,
  type Flow,
} from '../../../src/observe/index.js';
import { REFERENCE_LINES, starWarsFlows, tiefighter, xwing } from './fixtures.js';

function collector(): { writer: { write(s: string): boolean }; text: () => string } {
  const chunks: string[] = [];
  return {
    writer: {
      write(s: string) {
        chunks.push(s);
        return true;
      },
    },
    text: () => chunks.join(''),
  };
}

describe('compact printer', () => {
  it('prints the Star Wars demo flows exactly as the reference hubble observe lines', () => {
    const out = collector();
    const printer = new FlowPrinter(withWriter(out.writer));
    for (const flow of starWarsFlows()) expect(printer.write(flow)).toBe(true);
    expect(out.text()).toBe(REFERENCE_LINES.map((l) => `${l}\n`).join(''));
    expect(printer.error).toBeNull();
    expect(printer.count).toBe(6);
  });

  // The reference text lives beside the repository, not in it: checked when present.
  const reference = new URL('../../../../shared/reference/cilium-overview-and-starwars-demo.txt', import.meta.url);
  it.skipIf(!existsSync(reference))('the reference lines are really in the reference text', () => {
    const ref = readFileSync(reference, 'utf8');
    for (const line of REFERENCE_LINES) expect(ref).toContain(line);
  });

  it('formats timestamps as Go StampMilli: space-padded day, truncated millis, N/A when invalid', () => {
    expect(formatStampMilli('2024-04-05T21:03:13.283999Z')).toBe('Apr  5 21:03:13.283');
    expect(formatStampMilli('2024-12-25T01:02:03Z')).toBe('Dec 25 01:02:03.000');
    expect(formatStampMilli('2024-04-05T23:30:00.5+02:00')).toBe('Apr  5 21:30:00.500');
    expect(formatStampMilli('yesterday')).toBe('N/A');
  });

  it('prints IP:port for endpoints without a pod name, brackets IPv6, names reserved identities', () => {
    const flow = dropFlow({
      time: '2024-04-05T21:03:18.803Z',
      source: emptyEndpoint(2),
      destination: xwing,
      ip: { source: '2001:db8::1', destination: '10.0.1.11' },
      l4: { TCP: { source_port: 443, destination_port: 5555, flags: { SYN: true, ACK: true } } },
      direction: 'INGRESS',
      nodeName: 'n1',
      reason: 181,
    });
    expect(formatCompact(flow)).toBe(
      'Apr  5 21:03:18.803: [2001:db8::1]:443 (world) <> default/xwing:5555 (ID:63406) Policy denied by denylist DROPPED (TCP Flags: SYN, ACK)',
    );
    expect(formatCompact(flow, withIPTranslation(false), withNodeName())).toBe(
      'Apr  5 21:03:18.803 [n1]: [2001:db8::1]:443 (world) <> 10.0.1.11:5555 (ID:63406) Policy denied by denylist DROPPED (TCP Flags: SYN, ACK)',
    );
  });

  it('prints trace events by observation point and ICMP without ports', () => {
    const flow = traceFlow({
      time: '2024-04-05T21:03:18.803Z',
      source: tiefighter,
      destination: xwing,
      ip: { source: '10.0.1.10', destination: '10.0.1.11' },
      l4: { ICMPv4: { type: 8, code: 0 } },
      direction: 'EGRESS',
      nodeName: 'n1',
      observationPoint: 0,
      isReply: false,
    });
    expect(formatCompact(flow)).toBe(
      'Apr  5 21:03:18.803: default/tiefighter (ID:25698) -> default/xwing (ID:63406) to-endpoint FORWARDED (ICMPv4 EchoRequest)',
    );
  });

  it('escapes control characters taken from packets', () => {
    const flow = httpRequestFlow({
      time: '2024-04-05T21:03:13.283Z',
      source: tiefighter,
      destination: xwing,
      ip: { source: '10.0.1.10', destination: '10.0.1.11' },
      sourcePort: 1000,
      destinationPort: 80,
      direction: 'EGRESS',
      nodeName: 'n1',
      verdict: 'FORWARDED',
      http: { method: 'GET', url: 'http://x/\x1b[31mred\r\nFAKE LINE\x07', protocol: 'HTTP/1.1' },
    });
    const line = formatCompact(flow);
    expect(line).toContain('http://x/^[[31mred\\r\\nFAKE LINE\\x07');
    expect(line).not.toMatch(/[\x00-\x1f]/);
  });
});

describe('json and dict printers', () => {
  it('json: one Hubble-shaped object per line, parseable back to the flow', () => {
    const out = collector();
    const printer = new FlowPrinter(json(), withWriter(out.writer));
    const flows = starWarsFlows();
    for (const f of flows) printer.write(f);
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toHaveLength(flows.length);
    const first = JSON.parse(lines[0] as string) as { flow: Flow; node_name: string; time: string };
    expect(first.flow).toEqual(flows[0]);
    expect(first.node_name).toBe('node-1');
    expect(first.time).toBe(flows[0]?.time);
  });

  it('dict: key/value blocks separated by a dashed line', () => {
    const out = collector();
    const printer = new FlowPrinter(dict(), withWriter(out.writer));
    const flows = starWarsFlows();
    printer.write(flows[2] as Flow);
    printer.write(flows[3] as Flow);
    expect(out.text()).toBe(
      [
        '  TIMESTAMP: Apr  5 21:03:15.919',
        '     SOURCE: default/tiefighter:44396',
        'DESTINATION: default/deathstar-b4b8ccfb5-f75xw:80',
        '       TYPE: http-request',
        '    VERDICT: DROPPED',
        '    SUMMARY: HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port',
        '------------',
        '  TIMESTAMP: Apr  5 21:03:15.919',
        '     SOURCE: default/deathstar-b4b8ccfb5-f75xw:80',
        'DESTINATION: default/tiefighter:44396',
        '       TYPE: http-response',
        '    VERDICT: FORWARDED',
        '    SUMMARY: HTTP/1.1 403 0ms (PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)',
        '',
      ].join('\n'),
    );
  });
});

describe('writer errors stick', () => {
  it('a throwing writer fails once and nothing more is written', () => {
    let calls = 0;
    const printer = new FlowPrinter(
      withWriter({
        write() {
          calls++;
          throw Object.assign(new Error('EPIPE'), { code: 'EPIPE' });
        },
      }),
    );
    const [a, b] = starWarsFlows();
    expect(printer.write(a as Flow)).toBe(false);
    expect(printer.write(b as Flow)).toBe(false);
    expect(calls).toBe(1);
    expect(printer.error?.code).toBe('MEMBRANE_ERR_OBSERVE_OUTPUT');
    expect(printer.error?.message).toContain('EPIPE');
  });

  it("a stream's error event sticks too", () => {
    const stream = Object.assign(new EventEmitter(), { written: [] as string[], write(s: string) { this.written.push(s); return true; } });
    const printer = new FlowPrinter(withWriter(stream));
    const [a, b] = starWarsFlows();
    expect(printer.write(a as Flow)).toBe(true);
    stream.emit('error', new Error('broken pipe'));
    expect(printer.write(b as Flow)).toBe(false);
    expect(stream.written).toHaveLength(1);
    expect(printer.error?.message).toContain('broken pipe');
  });
});
