/**
 * issue-9 the agent runs with AGENT_NODE_FLAGS however it is started: bin/membrane (a shell script
 * with its own copy of the list) passes them to node for `agent` only, and the agent's own
 * re-execution into its namespace adds those its process lacks.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS, withAgentNodeFlags } from '../../../src/cli/agent-node-flags.js';

const BIN = fileURLToPath(new URL('../../../bin/membrane', import.meta.url));

describe('the agent\'s Node.js flags', () => {
  // A `node` first on PATH that prints the arguments bin/membrane gives it.
  const fake = mkdtempSync(join(tmpdir(), 'mbt-node-flags-'));
  writeFileSync(join(fake, 'node'), '#!/bin/sh\nprintf "%s\\n" "$@"\n');
  chmodSync(join(fake, 'node'), 0o755);
  afterAll(() => rmSync(fake, { recursive: true, force: true }));
  const argsOf = (...args: string[]): string[] => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${fake}:${process.env.PATH ?? ''}` };
    delete env.MEMBRANE_AGENT_NETNS;
    const r = spawnSync('sh', [BIN, ...args], { encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim().split('\n');
  };

  it('bin/membrane lists the same flags as src/cli/agent-node-flags.ts', () => {
    const line = /^AGENT_NODE_FLAGS="([^"]*)"$/m.exec(readFileSync(BIN, 'utf8'));
    expect(line?.[1]?.split(' ')).toEqual([...AGENT_NODE_FLAGS]);
  });

  it('bin/membrane gives them to node for the agent, before the script, and not for other commands', () => {
    const agent = argsOf('--api-socket', '/tmp/x.sock', 'agent', '--policy-dir', '/tmp/p');
    const script = agent.findIndex((a) => a.endsWith('dist/cli/main.js'));
    expect(script).toBeGreaterThan(0);
    for (const f of AGENT_NODE_FLAGS) expect(agent.slice(0, script)).toContain(f);
    expect(agent.slice(script + 1)).toEqual(['--api-socket', '/tmp/x.sock', 'agent', '--policy-dir', '/tmp/p']);
    const other = argsOf('policy', 'validate', 'agent.yaml');
    for (const f of AGENT_NODE_FLAGS) expect(other).not.toContain(f);
  });

  it('a re-execution keeps the flags it had and adds only the missing ones', () => {
    expect(withAgentNodeFlags(['--enable-source-maps'])).toEqual(['--enable-source-maps', ...AGENT_NODE_FLAGS]);
    expect(withAgentNodeFlags([...AGENT_NODE_FLAGS])).toEqual([...AGENT_NODE_FLAGS]);
  });
});
