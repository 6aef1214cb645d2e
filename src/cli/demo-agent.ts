/**
 * The agent a demo runs against: in its own node namespace (`membrane-lab`), pins under
 * /sys/fs/bpf/membrane, policies, state, API socket and logs under the demo's work directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from './client.js';

export const DEMO_NODE_NETNS = 'membrane-lab';
export const DEMO_PIN_ROOT = '/sys/fs/bpf/membrane';
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

/** Starts the agent and waits (up to 20 s) until its API answers; the agent's log is `WORK/agent.log`. */
export async function startDemoAgent(work: string, socket: string, out: (line?: string) => void): Promise<{ agent: ChildProcess; client: AgentClient }> {
  out(`== Starting the agent (node namespace ${DEMO_NODE_NETNS}, pins under ${DEMO_PIN_ROOT}) ==`);
  const agentLog = openSync(join(work, 'agent.log'), 'w');
  const agent: ChildProcess = spawn(
    process.execPath,
    [
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
