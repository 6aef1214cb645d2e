/**
 * The `hubble observe` flags and output modes `membrane observe` added for drop-in use: TCP-flag and
 * IP-version filters, short flags' long names, values that fail naming the flag typed, raw
 * allowlist/denylist filters, table output, time formats and colours.
 */
import { describe, expect, it } from 'vitest';
import {
  compileFilters,
  FlowPrinter,
  filtersFromFlags,
  formatFlowTime,
  output,
  rawFilters,
  withColor,
  withNodeName,
  withTimeFormat,
  withWriter,
  type Flow,
} from '../../../src/observe/index.js';
import { starWarsFlows } from './fixtures.js';

function collector(): { writer: { write(s: string): boolean }; text: () => string } {
  const chunks: string[] = [];
  return { writer: { write: (s: string) => (chunks.push(s), true) }, text: () => chunks.join('') };
}

const sw = starWarsFlows();
const synDrop = sw[5] as Flow;
const synAck: Flow = { ...synDrop, uuid: 'syn-ack', l4: { TCP: { source_port: 80, destination_port: 45706, flags: { SYN: true, ACK: true } } } };
const v6: Flow = { ...synDrop, uuid: 'v6', IP: { source: 'fd00::1', destination: 'fd00::2', ipVersion: 'IPv6' } };
const { IP: _ip, ...withoutIp } = synDrop;
const noIp: Flow = { ...withoutIp, uuid: 'no-ip' };
const flows = [...sw, synAck, v6, noIp];
const uuids = (flags: [string, string?][]): string[] => flows.filter(compileFilters(filtersFromFlags(flags))).map((f) => f.uuid);

describe('--tcp-flags, --ipv4, --ipv6, --ip-version', () => {
  it('--tcp-flags matches flows carrying every flag of one value (syn matches SYN and SYN-ACK), values OR-ed', () => {
    expect(uuids([['tcp-flags', 'syn']])).toEqual([sw[4]?.uuid, sw[5]?.uuid, 'syn-ack', 'v6', 'no-ip']);
    expect(uuids([['tcp-flags', 'SYN,ack']])).toEqual(['syn-ack']);
    expect(uuids([['tcp-flags', 'fin'], ['tcp-flags', 'ack']])).toEqual(['syn-ack']);
    expect(uuids([['not'], ['tcp-flags', 'ack'], ['verdict', 'DROPPED']])).toEqual([sw[2]?.uuid, sw[4]?.uuid, sw[5]?.uuid, 'v6', 'no-ip']);
  });

  it('an unknown TCP flag fails naming --tcp-flags, as hubble words it', () => {
    expect(() => filtersFromFlags([['tcp-flags', 'syn,bogus']])).toThrow(/tcp-flags: unknown tcp flag: bogus/);
  });

  it('--ipv4 / --ipv6 / --ip-version select by the IP layer; none is a flow without one', () => {
    expect(uuids([['ipv6']])).toEqual(['v6']);
    expect(uuids([['ipv4'], ['tcp-flags', 'ack']])).toEqual(['syn-ack']);
    expect(uuids([['ip-version', 'none']])).toEqual(['no-ip']);
    expect(uuids([['ip-version', 'v6'], ['ipv4']]).sort()).toEqual(flows.filter((f) => f.uuid !== 'no-ip').map((f) => f.uuid).sort());
  });
});

describe('flag values fail naming the flag the user typed', () => {
  it.each([
    ['port', 'abc', /^invalid flow filter: port: invalid port "abc"$/],
    ['from-port', '70000', /^invalid flow filter: from-port: invalid port "70000"$/],
    ['to-port', 'x', /^invalid flow filter: to-port: invalid port "x"$/],
    ['http-path', '(', /^invalid flow filter: http-path: /],
    ['ip', '10.0.0.0/99', /^invalid flow filter: ip: /],
    ['label', 'a in (', /^invalid flow filter: label: /],
  ])('--%s %s', (flag, value, message) => {
    expect(() => filtersFromFlags([[flag, value]])).toThrow(expect.objectContaining({ code: 'MEMBRANE_ERR_OBSERVE_FILTER', message: expect.stringMatching(message) }));
  });

  it('a hubble filter Membrane cannot evaluate is a usage error naming it, with why', () => {
    expect(() => filtersFromFlags([['to-service', 'default/x']])).toThrow(
      expect.objectContaining({ code: 'MEMBRANE_ERR_CLI_USAGE', message: expect.stringContaining('--to-service is not supported by Membrane: flows carry no Kubernetes service') }),
    );
    expect(() => filtersFromFlags([['not'], ['cel-expression', 'true']])).toThrow(/--cel-expression is not supported by Membrane/);
  });
});

describe('--allowlist / --denylist', () => {
  it('read concatenated FlowFilter JSON with proto or JSON field names, one filter per object', () => {
    expect(rawFilters('allowlist', ['{"sourcePod":["default/xwing"]} {"verdict":["FORWARDED"],"http_method":["PUT"]}', '{"eventType":[{"type":1,"matchSubType":true,"subType":133}]}'])).toEqual([
      { source_pod: ['default/xwing'] },
      { verdict: ['FORWARDED'], http_method: ['PUT'] },
      { event_type: [{ type: 1, sub_type: 133, match_sub_type: true }] },
    ]);
    const set = { allow: rawFilters('allowlist', ['{"tcpFlags":[{"ACK":true}]}']), deny: rawFilters('denylist', ['{"ip_version":["IPv6"]}']) };
    expect(flows.filter(compileFilters(set)).map((f) => f.uuid)).toEqual(['syn-ack']);
  });

  it('refuse bad JSON, unknown fields, wrong types and fields Membrane does not evaluate, naming the flag', () => {
    expect(() => rawFilters('allowlist', ['{"source_pod":'])).toThrow(/^invalid command line: invalid --allowlist flag: failed to decode '\{"source_pod":'/);
    expect(() => rawFilters('denylist', ['{"foo":["x"]}'])).toThrow(/invalid --denylist flag: .*unknown field "foo"/);
    expect(() => rawFilters('allowlist', ['{"source_port":[80]}'])).toThrow(/invalid --allowlist flag: .*source_port: a value has the wrong type/);
    expect(() => rawFilters('allowlist', ['{"source_port":["abc"]}'])).toThrow(/invalid --allowlist flag: .*invalid port "abc"/);
    expect(() => rawFilters('denylist', ['{"sourceService":["x"]}'])).toThrow(
      expect.objectContaining({ code: 'MEMBRANE_ERR_CLI_USAGE', message: expect.stringContaining("--denylist: FlowFilter.source_service is not supported by Membrane's observer") }),
    );
  });
});

describe('--time-format', () => {
  it.each([
    ['StampMilli', 'Dec  1 06:13:50.120'],
    ['YearMonthDay', '2026-12-01'],
    ['YearMonthDayHour', '2026-12-01T06Z'],
    ['YearMonthDayHourMinute', '2026-12-01T06:13Z'],
    ['RFC3339', '2026-12-01T06:13:50Z'],
    ['RFC3339Milli', '2026-12-01T06:13:50.12Z'],
    ['RFC3339Micro', '2026-12-01T06:13:50.120045Z'],
    ['RFC3339Nano', '2026-12-01T06:13:50.120045006Z'],
    ['RFC1123Z', 'Tue, 01 Dec 2026 06:13:50 +0000'],
  ] as const)('%s prints as Go formats its layout, in UTC', (format, text) => {
    expect(formatFlowTime('2026-12-01T07:13:50.120045006+01:00', format)).toBe(text);
  });

  it('.999 layouts drop trailing zeros and the dot of a whole second', () => {
    expect(formatFlowTime('2026-12-01T06:13:50Z', 'RFC3339Nano')).toBe('2026-12-01T06:13:50Z');
    expect(formatFlowTime('2026-12-01T06:13:50.000900Z', 'RFC3339Milli')).toBe('2026-12-01T06:13:50Z');
    expect(formatFlowTime('garbage', 'RFC3339')).toBe('N/A');
  });
});

describe('table output', () => {
  it('prints hubble\'s tab-aligned columns when closed (the flow\'s own source and destination, no identities)', () => {
    const out = collector();
    const p = new FlowPrinter(output('table'), withWriter(out.writer));
    for (const f of [sw[0], sw[1], sw[4]] as Flow[]) p.write(f);
    expect(out.text()).toBe('');
    expect(p.close()).toBe(true);
    expect(out.text()).toBe(
      [
        'TIMESTAMP             SOURCE                                 DESTINATION                            TYPE                          VERDICT     SUMMARY',
        'Apr  5 21:03:13.283   default/tiefighter:42746               default/deathstar-b4b8ccfb5-w84sn:80   http-request                  FORWARDED   HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing',
        'Apr  5 21:03:13.283   default/deathstar-b4b8ccfb5-w84sn:80   default/tiefighter:42746               http-response                 FORWARDED   HTTP/1.1 200 1ms (POST http://deathstar.default.svc.cluster.local/v1/request-landing)',
        'Apr  5 21:03:18.803   default/xwing:45706                    default/deathstar-b4b8ccfb5-f75xw:80   policy-verdict:none INGRESS   DENIED      TCP Flags: SYN',
        '',
      ].join('\n'),
    );
  });

  it('adds a NODE column with --print-node-name and uses --time-format; nothing at all without flows', () => {
    const out = collector();
    const p = new FlowPrinter(output('table'), withWriter(out.writer), withNodeName(), withTimeFormat('RFC3339'));
    p.write(sw[5] as Flow);
    p.close();
    expect(out.text()).toBe(
      'TIMESTAMP              NODE     SOURCE                DESTINATION                            TYPE            VERDICT   SUMMARY\n' +
        '2024-04-05T21:03:18Z   node-1   default/xwing:45706   default/deathstar-b4b8ccfb5-f75xw:80   Policy denied   DROPPED   TCP Flags: SYN\n',
    );
    const empty = collector();
    new FlowPrinter(output('table'), withWriter(empty.writer)).close();
    expect(empty.text()).toBe('');
  });
});

describe('--color', () => {
  it('colours hosts cyan, identities magenta and the verdict by kind, in compact and dict output only', () => {
    const out = collector();
    new FlowPrinter(withWriter(out.writer), withColor()).write(sw[0] as Flow);
    expect(out.text()).toBe(
      'Apr  5 21:03:13.283: \x1b[36mdefault/tiefighter:42746\x1b[0m \x1b[35m(ID:25698)\x1b[0m -> \x1b[36mdefault/deathstar-b4b8ccfb5-w84sn:80\x1b[0m \x1b[35m(ID:6822)\x1b[0m http-request \x1b[32mFORWARDED\x1b[0m (HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing)\n',
    );
    const table = collector();
    const t = new FlowPrinter(output('table'), withWriter(table.writer), withColor());
    t.write(sw[4] as Flow);
    t.close();
    expect(table.text()).not.toContain('\x1b');
  });
});
