/**
 * The agent a demo runs against: in its own node namespace (`membrane-lab`), pins under
 * /sys/fs/bpf/membrane, policies, state, API socket and logs under the demo's work directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { AGENT_NODE_FLAGS } from './agent-node-flags.js';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from './client.js';
import { labDownCommand } from './lab-command.js';

export const DEMO_NODE_NETNS = 'membrane-lab';
export const DEMO_PIN_ROOT = '/sys/fs/bpf/membrane';
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * The demos own /sys/fs/bpf/membrane while they run: never beside another agent using it. Returns
 * the socket of an agent already serving, if any.
 */
export async function agentServing(sockets: readonly string[]): Promise<string | null> {
  for (const socket of sockets) {
    const other = new AgentClient(socket);
    const up = await other.request('GET', '/v1/healthz').then(() => true, () => false);
    await other.close();
    if (up) return socket;
  }
  return null;
}

/** Starts the agent and waits (up to 20 s) until its API answers; the agent's log is `WORK/agent.log`. */
export async function startDemoAgent(work: string, socket: string, out: (line?: string) => void): Promise<{ agent: ChildProcess; client: AgentClient }> {
  out(`== Starting the agent (node namespace ${DEMO_NODE_NETNS}, pins under ${DEMO_PIN_ROOT}) ==`);
  const agentLog = openSync(join(work, 'agent.log'), 'w');
  const agent: ChildProcess = spawn(
    process.execPath,
    [
      ...AGENT_NODE_FLAGS,
      CLI, '--api-socket', socket, 'agent', '--netns', DEMO_NODE_NETNS, '--policy-dir', join(work, 'policies'),
      '--state-dir', join(work, 'state'), '--pin-root', DEMO_PIN_ROOT, '--access-log', join(work, 'access.log'),
      '--node-name', DEMO_NODE_NETNS,
    ],
    { stdio: ['ignore', agentLog, agentLog] },
  );
  closeSync(agentLog);
  const client = new AgentClient(socket);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (agent.exitCode !== null) throw new Error(`agent exited with ${agent.exitCode}`);
    if (await client.request('GET', '/v1/healthz').then(() => true, () => false)) break;
    if (Date.now() > deadline) {
      agent.kill('SIGTERM'); // ours, by its handle; the caller's teardown never saw it
      throw new Error('agent did not become ready in 20s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  out(`   agent running (pid ${agent.pid}); log: ${join(work, 'agent.log')}`);
  return { agent, client };
}

/**
 * The end of a demo: unless `keep`, the lab, the agent (by its handle), its pins and node
 * namespace are removed; then the verdict line. Returns the exit status.
 */
export async function finishDemo(
  o: { lab: string; socket: string; keep: boolean; agent: ChildProcess; client: AgentClient; failures: number },
  out: (line?: string) => void,
): Promise<number> {
  if (!o.keep) {
    out('== Tearing down ==');
    await labDownCommand(o.lab, o.socket).catch((err: Error) => out(`lab down: ${err.message}`));
    await o.client.close();
    o.agent.kill('SIGTERM');
    await new Promise((res) => (o.agent.exitCode !== null ? res(null) : o.agent.once('exit', res)));
    spawnSync(process.execPath, [CLI, '--api-socket', o.socket, 'uninstall', '--pin-root', DEMO_PIN_ROOT, '--netns', DEMO_NODE_NETNS], { stdio: 'ignore' });
    out('   lab, agent, pins and node namespace removed');
  } else {
    await o.client.close();
    // The agent lives on without this command: it must not hold the command open.
    o.agent.unref();
    out(`== Kept running: agent pid ${o.agent.pid}, socket ${o.socket} ==`);
  }
  out(o.failures === 0 ? 'Demo passed: every outcome matches Cilium.' : `Demo FAILED: ${o.failures} outcome(s) differ.`);
  return o.failures === 0 ? 0 : 1;
}
