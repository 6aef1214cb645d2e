/**
 * Agent restart: SIGTERM, stay down, start again. The pinned programs and maps must keep
 * enforcing L3/L4 the whole time — allowed flows stay allowed, denied flows stay denied —
 * and the restarted agent must adopt the pins without flushing them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TestNode, eventually, privilegedSkipReason, ROOT, starwarsLab, RULE1_L3L4, RULE1_L7 } from './harness.js';

const skip = privilegedSkipReason();
const P = 'rs';

/**
 * One request from inside a pod, without blocking the test's event loop. An allowed request gets
 * a generous timeout (a busy CI machine must not look like a drop); a denied one can only time out.
 */
const ALLOWED_TIMEOUT = 3;
const DENIED_TIMEOUT = 0.4;
function probe(pod: string, ip: string, timeoutSec: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn('ip', ['netns', 'exec', pod, 'curl', '-s', '--max-time', String(timeoutSec), '-o', '/dev/null', '-X', 'POST', `http://${ip}/v1/request-landing`]);
    c.on('exit', (code) => resolve(code === 0));
  });
}

describe.skipIf(skip !== null)('agent restart keeps L3/L4 enforcement' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let node: TestNode;

  beforeAll(async () => {
    TestNode.sweep('restart', [`${P}-ds`, `${P}-tie`, `${P}-xw`]);
    node = new TestNode('restart');
    await node.startAgent();
    await node.labUp(starwarsLab(P, '10.212'));
    node.writePolicy('rule1.yaml', RULE1_L3L4);
    // The watched directory is read asynchronously: start once rule1 is enforced on deathstar
    // (a fixed wait failed on a loaded machine).
    const enforced = async (): Promise<boolean> =>
      (await node.client.request<{ name: string; ingressEnforcement: boolean }[]>('GET', '/v1/endpoints')).some((e) => e.name === `${P}-ds` && e.ingressEnforcement);
    expect(await eventually(enforced, 10_000)).toBe(true);
  });

  afterAll(async () => {
    await node?.cleanup();
  });

  it('allowed stays allowed and denied stays denied through SIGTERM, downtime and start', async () => {
    const ds = node.podIp(`${P}-ds`);
    expect(await probe(`${P}-tie`, ds, ALLOWED_TIMEOUT)).toBe(true);
    expect(await probe(`${P}-xw`, ds, DENIED_TIMEOUT)).toBe(false);
    const policyBefore = (await node.client.request<{ policy: unknown[] }>('GET', '/v1/datapath')).policy.length;

    const results: { phase: string; tie: boolean; xw: boolean }[] = [];
    let phase = 'running';
    let probing = true;
    const loop = (async () => {
      while (probing) {
        const [tie, xw] = await Promise.all([probe(`${P}-tie`, ds, ALLOWED_TIMEOUT), probe(`${P}-xw`, ds, DENIED_TIMEOUT)]);
        results.push({ phase, tie, xw });
      }
    })();

    await new Promise((r) => setTimeout(r, 300));
    phase = 'stopping';
    expect(await node.stopAgent('SIGTERM')).toBe(0);
    phase = 'down';
    await new Promise((r) => setTimeout(r, 1500));
    phase = 'starting';
    await node.startAgent();
    phase = 'restarted';
    await new Promise((r) => setTimeout(r, 800));
    probing = false;
    await loop;

    const down = results.filter((r) => r.phase === 'down');
    expect(down.length).toBeGreaterThan(1);
    expect(results.filter((r) => !r.tie)).toEqual([]);
    expect(results.filter((r) => r.xw)).toEqual([]);
    expect(node.agentLog()).toContain('pinned datapath stays in force');
    const after = await node.client.request<{ policy: unknown[] }>('GET', '/v1/datapath');
    expect(after.policy.length).toBe(policyBefore);
    const eps = await node.client.request<{ name: string; ingressEnforcement: boolean }[]>('GET', '/v1/endpoints');
    expect(eps.find((e) => e.name === `${P}-ds`)?.ingressEnforcement).toBe(true);
  });

  it('while the proxy is down, L7-policied flows fail closed instead of bypassing it', async () => {
    node.writePolicy('rule1.yaml', RULE1_L7);
    const url = (path: string): string => `http://${node.podIp(`${P}-ds`)}${path}`;
    expect(await eventually(() => node.curl(`${P}-tie`, 'PUT', url('/v1/exhaust-port'), 0.5).status === 403, 2000)).toBe(true);

    // Before the L7 rule took effect the PUT reached deathstar directly: look only at what comes after.
    const seen = node.serverLog(`${P}-ds`).length;
    expect(await node.stopAgent('SIGTERM')).toBe(0);
    const landing = node.curl(`${P}-tie`, 'POST', url('/v1/request-landing'), 0.5);
    const exhaust = node.curl(`${P}-tie`, 'PUT', url('/v1/exhaust-port'), 0.5);
    expect(landing.timedOut).toBe(true);
    expect(exhaust.timedOut).toBe(true);
    expect(node.serverLog(`${P}-ds`).slice(seen)).toBe('');

    await node.startAgent();
    expect(node.curl(`${P}-tie`, 'POST', url('/v1/request-landing')).body).toBe('Ship landed\n');
    expect(node.curl(`${P}-tie`, 'PUT', url('/v1/exhaust-port')).status).toBe(403);
  });

  it('a restart after a rejected edit keeps enforcing the last good policy (it does not drop the file and open traffic)', async () => {
    // rule1.yaml holds RULE1_L7 (the previous test). An edit with an invalid path regex is
    // rejected by the running agent; the restarted agent must enforce what the running one did.
    const url = (path: string): string => `http://${node.podIp(`${P}-ds`)}${path}`;
    node.writePolicy('rule1.yaml', RULE1_L7.replace('"/v1/request-landing"', '"/v1/(request-landing"'));
    expect(await eventually(() => node.agentLog().includes('invalid policy file rejected; its last good policies stay in force'), 5000)).toBe(true);
    expect(await node.stopAgent('SIGTERM')).toBe(0);
    await node.startAgent();
    expect(node.agentLog()).toContain('policy file is invalid at start: enforcing its last good version');
    expect(node.curl(`${P}-tie`, 'POST', url('/v1/request-landing')).body).toBe('Ship landed\n');
    expect(node.curl(`${P}-tie`, 'PUT', url('/v1/exhaust-port')).status).toBe(403);
    expect(await probe(`${P}-xw`, node.podIp(`${P}-ds`), DENIED_TIMEOUT)).toBe(false);
    // `policy get`: the file is listed with its problem and its policy in force.
    const got = await node.client.request<{ files: { policies: { name: string }[]; problems: unknown[] }[] }>('GET', '/v1/policy');
    const file = got.files.find((f) => f.policies.some((p) => p.name === 'rule1'));
    expect(file?.problems.length).toBeGreaterThan(0);
  });

  it('bin/membrane agent --netns of a namespace that exists runs the agent as one process inside it (no second Node start-up on a restart)', async () => {
    expect(await node.stopAgent('SIGTERM')).toBe(0);
    const bin = join(ROOT, 'bin', 'membrane');
    const agent = spawn(bin, [
      '--api-socket', node.socket, 'agent', '--netns', node.netns, '--policy-dir', node.policyDir,
      '--state-dir', join(node.dir, 'state'), '--pin-root', node.pinRoot, '--node-name', node.netns,
    ], { stdio: 'ignore' });
    try {
      expect(await eventually(() => node.client.request('GET', '/v1/healthz').then(() => true, () => false), 20_000)).toBe(true);
      // The PID we started is the agent itself (nsenter exec'd Node), in the node's namespace.
      expect(readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').split('\0')).toContain('agent');
      expect(readlinkSync(`/proc/${agent.pid}/exe`)).toBe(realpathSync(process.execPath));
      expect(statSync(`/proc/${agent.pid}/ns/net`).ino).toBe(statSync(`/run/netns/${node.netns}`).ino);
      expect(node.curl(`${P}-tie`, 'POST', `http://${node.podIp(`${P}-ds`)}/v1/request-landing`).body).toBe('Ship landed\n');
    } finally {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    expect(agent.exitCode).toBe(0);
    await node.startAgent();
  });

  it('uninstall refuses while the agent runs, then removes its pins and node namespace', async () => {
    const refused = node.cli(['uninstall', '--pin-root', node.pinRoot, '--netns', node.netns]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/still serving/);
    expect(existsSync(node.pinRoot)).toBe(true);

    expect(await node.stopAgent('SIGTERM')).toBe(0);
    const done = node.cli(['uninstall', '--pin-root', node.pinRoot, '--netns', node.netns]);
    expect(done.status, done.stderr).toBe(0);
    expect(existsSync(node.pinRoot)).toBe(false);
    expect(existsSync(`/run/netns/${node.netns}`)).toBe(false);
  });
});
