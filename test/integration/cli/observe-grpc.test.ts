/**
 * `membrane observe` over the Hubble observer API: the built CLI, as a child process, against a
 * real HubbleServer on a unix socket beside the (absent) API socket, as the agent lays them out.
 * The output is what the reference `hubble observe` lines of the Star Wars demo say.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropFlow, httpRequestFlow, type Flow } from '../../../src/observe/index.js';
import { deathstarF, IPS, REFERENCE_LINES, starWarsFlows, tiefighter, xwing } from '../../unit/observe/fixtures.js';
import { observerWith } from './observer-fixture.js';
import { CLI, membraneAsync, outputLines, REPO, type CliOutput } from './run-cli.js';

const membrane = (args: string[]): Promise<CliOutput> => membraneAsync(args);
const lines = outputLines;

describe('membrane observe over gRPC', () => {
  const sw = starWarsFlows();
  const { dir, ring } = observerWith('observe-grpc', () => sw);
  const apiSocket = join(dir, 'agent.sock');

  it('--pod deathstar --protocol http prints the reference HTTP lines, found through --api-socket', async () => {
    const r = await membrane(['--api-socket', apiSocket, 'observe', '--pod', 'deathstar', '--protocol', 'http']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual(REFERENCE_LINES.slice(0, 4));
  });

  it('--verdict DROPPED prints the denied request and the kernel drop', async () => {
    const r = await membrane(['--api-socket', apiSocket, 'observe', '--verdict', 'DROPPED']);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual(REFERENCE_LINES.filter((_, i) => sw[i]?.verdict === 'DROPPED'));
    expect(lines(r.stdout)).toHaveLength(3);
  });

  it('--server names the socket as hubble does; --not, --last and -o json keep their meaning', async () => {
    const server = `unix://${join(dir, 'hubble.sock')}`;
    const notHttp = await membrane(['observe', '--server', server, '--not', '--protocol', 'http']);
    expect(lines(notHttp.stdout)).toEqual(REFERENCE_LINES.slice(4));
    const last1 = await membrane(['observe', '--server', server, '--last', '1', '-o', 'json']);
    const flow = sw.at(-1) as Flow;
    expect(last1.stdout).toBe(`${JSON.stringify({ flow, node_name: flow.node_name, time: flow.time })}\n`);
  });

  it('--first, --since and --until choose the flows as hubble\'s do', async () => {
    const server = `unix://${join(dir, 'hubble.sock')}`;
    const first = await membrane(['observe', '--server', server, '--first', '2']);
    expect(lines(first.stdout)).toEqual(REFERENCE_LINES.slice(0, 2));
    const since = await membrane(['observe', '--server', server, '--since', '2024-04-05T21:03:15Z']);
    expect(lines(since.stdout)).toEqual(REFERENCE_LINES.slice(2));
    const range = await membrane(['observe', '--server', server, '--since', '2024-04-05T21:03:15Z', '--until', '2024-04-05T21:03:16Z']);
    expect(lines(range.stdout)).toEqual(REFERENCE_LINES.slice(2, 4));
    const untilOnly = await membrane(['observe', '--server', server, '--until', '2024-04-05T21:03:16Z', '--protocol', 'http', '--http-method', 'PUT']);
    expect(lines(untilOnly.stdout)).toEqual([REFERENCE_LINES[2], REFERENCE_LINES[3]]);
    const both = await membrane(['observe', '--server', server, '--first', '2', '--follow']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/cannot set both --first and --follow \[MEMBRANE_ERR_CLI_USAGE\]/);
  });

  it('a bad filter value is the agent\'s MEMBRANE_ERR_OBSERVE_FILTER; --last 0 a usage error', async () => {
    const bad = await membrane(['--api-socket', apiSocket, 'observe', '--http-path', '(']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\[MEMBRANE_ERR_OBSERVE_FILTER\]/);
    const zero = await membrane(['--api-socket', apiSocket, 'observe', '--last', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--last 0: expected a whole number from 1 to 1000000 \[MEMBRANE_ERR_CLI_USAGE\]/);
  });

  it('no agent at the address is MEMBRANE_ERR_AGENT_UNREACHABLE', async () => {
    const r = await membrane(['observe', '--server', `unix://${join(dir, 'nobody.sock')}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the agent: .*nobody\.sock.*\[MEMBRANE_ERR_AGENT_UNREACHABLE\]/);
  });

  it('--follow prints the last matching flow, then each new one, and exits cleanly on SIGINT', async () => {
    const child = spawn(process.execPath, [CLI, '--api-socket', apiSocket, 'observe', '--follow', '--last', '1', '--to-pod', 'deathstar', '--verdict', 'DROPPED'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until(() => lines(out).length === 1);
      expect(lines(out)).toEqual([REFERENCE_LINES[5]]);
      const base = { source: xwing, destination: deathstarF, ip: { source: IPS.xwing, destination: IPS.deathstarF }, direction: 'INGRESS' as const, nodeName: 'node-1' };
      ring.push(httpRequestFlow({ ...base, source: tiefighter, time: new Date(), sourcePort: 1, destinationPort: 80, verdict: 'FORWARDED', http: { method: 'GET', url: 'http://x/', protocol: 'HTTP/1.1', headers: [] } }));
      ring.push(dropFlow({ ...base, uuid: 'new-drop', l4: { TCP: { source_port: 45999, destination_port: 80, flags: { SYN: true } } }, reason: 181 }));
      await until(() => lines(out).length === 2);
      expect(lines(out)[1]).toMatch(/default\/xwing:45999 \(ID:63406\) <> default\/deathstar-b4b8ccfb5-f75xw:80 \(ID:6822\) Policy denied by denylist DROPPED \(TCP Flags: SYN\)$/);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
