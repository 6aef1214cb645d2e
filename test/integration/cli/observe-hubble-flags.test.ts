/**
 * `membrane observe` as a drop-in `hubble observe`: the built CLI, as a child process, against a real
 * HubbleServer, with the flags and output modes a new-user trial found missing. Each case asserts
 * what the user sees: the printed text and the exit status.
 */
import { describe, expect, it } from 'vitest';
import { formatStampMilli, httpRequestFlow } from '../../../src/observe/index.js';
import { deathstarW, IPS, REFERENCE_LINES, starWarsFlows, tiefighter } from '../../unit/observe/fixtures.js';
import { observerWith } from './observer-fixture.js';
import { CLI, membraneAsync, outputLines, REPO, type CliOutput } from './run-cli.js';

const membrane = (args: string[]): Promise<CliOutput> => membraneAsync(args, { NO_COLOR: '' });
const lines = outputLines;

describe('membrane observe takes hubble observe\'s flags and output modes', () => {
  const sw = starWarsFlows();
  const { server } = observerWith('observe-hubble-flags', () => sw);
  const observe = (...args: string[]): Promise<CliOutput> => membrane(['observe', '--server', server, ...args]);

  it('-o table prints hubble\'s tab-aligned columns; with --follow it is a usage error, as hubble\'s', async () => {
    const [table, follow] = await Promise.all([observe('-o', 'table'), observe('-o', 'table', '-f')]);
    expect(table.code).toBe(0);
    expect(table.stdout).toBe(
      [
        'TIMESTAMP             SOURCE                                 DESTINATION                            TYPE                          VERDICT     SUMMARY',
        'Apr  5 21:03:13.283   default/tiefighter:42746               default/deathstar-b4b8ccfb5-w84sn:80   http-request                  FORWARDED   HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing',
        'Apr  5 21:03:13.283   default/deathstar-b4b8ccfb5-w84sn:80   default/tiefighter:42746               http-response                 FORWARDED   HTTP/1.1 200 1ms (POST http://deathstar.default.svc.cluster.local/v1/request-landing)',
        'Apr  5 21:03:15.919   default/tiefighter:44396               default/deathstar-b4b8ccfb5-f75xw:80   http-request                  DROPPED     HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port',
        'Apr  5 21:03:15.919   default/deathstar-b4b8ccfb5-f75xw:80   default/tiefighter:44396               http-response                 FORWARDED   HTTP/1.1 403 0ms (PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)',
        'Apr  5 21:03:18.803   default/xwing:45706                    default/deathstar-b4b8ccfb5-f75xw:80   policy-verdict:none INGRESS   DENIED      TCP Flags: SYN',
        'Apr  5 21:03:18.803   default/xwing:45706                    default/deathstar-b4b8ccfb5-f75xw:80   Policy denied                 DROPPED     TCP Flags: SYN',
        '',
      ].join('\n'),
    );
    expect(follow.code).toBe(2);
    expect(follow.stderr).toBe('Error: invalid command line: table output format is not compatible with follow mode [MEMBRANE_ERR_CLI_USAGE]\n');
  });

  it('-o jsonpb prints each GetFlowsResponse in proto3 JSON: zero values left out, wrappers bare, 64-bit numbers as strings', async () => {
    const [drop, http] = await Promise.all([observe('-o', 'jsonpb', '--last', '1'), observe('-o', 'jsonpb', '--first', '2')]);
    expect(drop.code).toBe(0);
    expect(drop.stdout).toBe(
      `{"flow":{"time":"2024-04-05T21:03:18.803512345Z","uuid":"${sw[5]?.uuid}","verdict":"DROPPED","drop_reason":133,` +
        '"IP":{"source":"10.0.1.11","destination":"10.0.1.21","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":45706,"destination_port":80,"flags":{"SYN":true}}},' +
        '"source":{"ID":1202,"identity":63406,"namespace":"default","labels":["k8s:class=xwing","k8s:io.kubernetes.pod.namespace=default","k8s:org=alliance"],"pod_name":"xwing"},' +
        '"destination":{"ID":1204,"identity":6822,"namespace":"default","labels":["k8s:class=deathstar","k8s:io.kubernetes.pod.namespace=default","k8s:org=empire"],"pod_name":"deathstar-b4b8ccfb5-f75xw"},' +
        '"Type":"L3_L4","node_name":"node-1","event_type":{"type":1,"sub_type":133},"traffic_direction":"INGRESS","drop_reason_desc":"POLICY_DENIED","Summary":"TCP Flags: SYN"},' +
        '"node_name":"node-1","time":"2024-04-05T21:03:18.803512345Z"}\n',
    );
    const [req, res] = lines(http.stdout).map((l) => JSON.parse(l) as { flow: Record<string, unknown> & { l7: Record<string, unknown> } });
    expect(req?.flow.is_reply).toBe(false);
    expect(req?.flow.l7).toEqual({ type: 'REQUEST', http: { method: 'POST', url: 'http://deathstar.default.svc.cluster.local/v1/request-landing', protocol: 'HTTP/1.1' } });
    expect(res?.flow.is_reply).toBe(true);
    expect(res?.flow.l7.latency_ns).toBe('1400000');
    expect(res?.flow.time).toBe('2024-04-05T21:03:13.283999Z');
  });

  it('the short flags are hubble\'s: -t type, -n namespace, -l label, -4 / -6 IP version', async () => {
    const [t, tn, l, v4, v6] = await Promise.all([
      observe('-t', 'policy-verdict'),
      observe('-tdrop', '-n', 'default'),
      observe('-l', 'class=xwing', '--first', '1'),
      observe('-4', '--tcp-flags', 'syn'),
      observe('-6'),
    ]);
    expect(lines(t.stdout)).toEqual([REFERENCE_LINES[4]]);
    expect(lines(tn.stdout)).toEqual([REFERENCE_LINES[5]]);
    expect(lines(l.stdout)).toEqual([REFERENCE_LINES[4]]);
    expect(lines(v4.stdout)).toEqual([REFERENCE_LINES[4], REFERENCE_LINES[5]]);
    expect(v6).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('--all gives every flow held and cannot join --last; formatting flags change the line as hubble\'s do', async () => {
    const [all, both, fmt, color, auto] = await Promise.all([
      observe('--all', '--protocol', 'http'),
      observe('--all', '--last', '2'),
      observe('--print-node-name', '--time-format', 'RFC3339', '--numeric', '--last', '1'),
      observe('--color', 'always', '--last', '1'),
      observe('--color', 'auto', '--last', '1'),
    ]);
    expect(lines(all.stdout)).toEqual(REFERENCE_LINES.slice(0, 4));
    expect(both.code).toBe(2);
    expect(both.stderr).toBe('Error: invalid command line: cannot set both --last and --all [MEMBRANE_ERR_CLI_USAGE]\n');
    expect(fmt.stdout).toBe('2024-04-05T21:03:18Z [node-1]: 10.0.1.11:45706 (ID:63406) <> 10.0.1.21:80 (ID:6822) Policy denied DROPPED (TCP Flags: SYN)\n');
    expect(color.stdout).toBe(
      'Apr  5 21:03:18.803: \x1b[36mdefault/xwing:45706\x1b[0m \x1b[35m(ID:63406)\x1b[0m <> \x1b[36mdefault/deathstar-b4b8ccfb5-f75xw:80\x1b[0m \x1b[35m(ID:6822)\x1b[0m Policy denied \x1b[31mDROPPED\x1b[0m (TCP Flags: SYN)\n',
    );
    expect(auto.stdout).toBe(`${REFERENCE_LINES[5]}\n`);
  });

  it('-o takes hubble\'s modes in any case; anything else is a usage error naming the choices', async () => {
    const [upper, lower, bad] = await Promise.all([observe('-o', 'JSONPB', '--last', '2'), observe('-o', 'jsonpb', '--last', '2'), observe('-o', 'XML')]);
    expect(upper.code).toBe(0);
    expect(upper.stdout).toBe(lower.stdout);
    expect(lines(upper.stdout)).toHaveLength(2);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('Allowed choices are compact, dict, json, jsonpb, table, tab.');
  });

  it('--all with --follow prints every flow held first, then follows (hubble: number = MaxUint64)', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [CLI, 'observe', '--server', server, '--all', '-f', '--protocol', 'http'], { cwd: REPO });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 15_000;
    while (lines(out).length < 4 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    expect(lines(out)).toEqual(REFERENCE_LINES.slice(0, 4));
  });

  it('--allowlist / --denylist take JSON FlowFilters; --print-raw-filters prints the request\'s filters as hubble does', async () => {
    const [raw, none, lists] = await Promise.all([
      observe('--print-raw-filters', '--pod', 'deathstar', '--not', '--verdict', 'DROPPED'),
      observe('--print-raw-filters'),
      observe('--allowlist', '{"sourcePod":["default/xwing"]}', '--allowlist', '{"http_method":["PUT"]}', '--denylist', '{"verdict":["DROPPED"]}'),
    ]);
    expect(raw.stdout).toBe(
      "allowlist:\n    - '{\"source_pod\":[\"deathstar\"]}'\n    - '{\"destination_pod\":[\"deathstar\"]}'\ndenylist:\n    - '{\"verdict\":[\"DROPPED\"]}'\n",
    );
    expect(none.stdout).toBe('{}\n');
    expect(lines(lists.stdout)).toEqual([REFERENCE_LINES[3]]);
  });

  it('a bad value names the flag typed (exit 1); a hubble flag Membrane cannot honour exits 2 naming it', async () => {
    const [port, svc, input, all, list] = await Promise.all([
      observe('--port', 'abc'),
      observe('--from-service', 'default/x'),
      observe('--input-file', 'flows.json'),
      observe('-A'),
      observe('--denylist', '{"source_service":["default/x"]}'),
    ]);
    expect(port).toEqual({ code: 1, stdout: '', stderr: 'Error: invalid flow filter: port: invalid port "abc" [MEMBRANE_ERR_OBSERVE_FILTER]\n' });
    expect(svc.code).toBe(2);
    expect(svc.stderr).toBe('Error: invalid command line: --from-service is not supported by Membrane: flows carry no Kubernetes service (Membrane has no service load-balancing) [MEMBRANE_ERR_CLI_USAGE]\n');
    expect(input.code).toBe(2);
    expect(input.stderr).toMatch(/^Error: invalid command line: --input-file is not supported by Membrane: /);
    expect(all.code).toBe(2);
    expect(all.stderr).toMatch(/^Error: invalid command line: -A is not supported by Membrane: /);
    expect(list.code).toBe(2);
    expect(list.stderr).toMatch(/--denylist: FlowFilter\.source_service is not supported by Membrane's observer/);
  });
});

describe('--since / --until take a StampMilli time copied from the output', () => {
  const at = (msAgo: number): Date => new Date(Math.floor((Date.now() - msAgo) / 1000) * 1000);
  const times = [at(3 * 3_600_000), at(2 * 3_600_000), at(3_600_000)];
  const { server } = observerWith(
    'observe-stampmilli',
    () =>
      times.map((time, i) =>
        httpRequestFlow({
          time,
          uuid: `recent-${i}`,
          source: tiefighter,
          destination: deathstarW,
          ip: { source: IPS.tiefighter, destination: IPS.deathstarW },
          sourcePort: 40000 + i,
          destinationPort: 80,
          direction: 'INGRESS',
          nodeName: 'node-1',
          verdict: 'FORWARDED',
          http: { method: 'GET', url: `http://deathstar/${i}`, protocol: 'HTTP/1.1' },
        }),
      ),
    8,
  );

  it('selects the flows between the two printed times (UTC), as RFC 3339 would', async () => {
    const stamp = (d: Date): string => formatStampMilli(d.toISOString());
    const [stampRange, rfcRange] = await Promise.all([
      membrane(['observe', '--server', server, '--since', stamp(times[1] as Date), '--until', stamp(times[1] as Date), '-o', 'jsonpb']),
      membrane(['observe', '--server', server, '--since', (times[1] as Date).toISOString(), '--until', (times[1] as Date).toISOString(), '-o', 'jsonpb']),
    ]);
    expect(stampRange.stderr).toBe('');
    expect(lines(stampRange.stdout).map((l) => (JSON.parse(l) as { flow: { uuid: string } }).flow.uuid)).toEqual(['recent-1']);
    expect(stampRange.stdout).toBe(rfcRange.stdout);
  });
});
