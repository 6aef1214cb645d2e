/**
 * Regression tests for defects a new user met on a fresh clone (fix-defects): file errors that
 * came out as internal bugs, counts validated with the wrong unit or no bound, agent flag
 * combinations found only after the agent had started, and a crash on a closed stdout. All run
 * the built CLI as a real child process, offline (no agent).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, CLI, membrane, REPO, STARWARS, removeTempDirs, tempDir } from './run-cli.js';

beforeAll(assertBuilt);
afterEach(removeTempDirs);

/** The agent command with flags that must be refused before anything starts (no root needed). */
function agent(dir: string, extra: string[]): ReturnType<typeof membrane> {
  return membrane([
    '--api-socket', join(dir, 'agent.sock'), 'agent', '--policy-dir', join(dir, 'policies'), '--state-dir', join(dir, 'state'),
    '--pin-root', join(dir, 'pins'), ...extra,
  ]);
}

describe('file errors are coded errors naming the path, not MEMBRANE_ERR_UNEXPECTED', () => {
  it('policy import of a missing file', () => {
    const r = membrane(['policy', 'import', '/nonexistent.yaml']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('Error: cannot read or write a policy file: /nonexistent.yaml: no such file or directory [MEMBRANE_ERR_POLICY_IO]\n');
  });

  it('policy import of a directory', () => {
    const r = membrane(['policy', 'import', 'deploy/lab']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('Error: cannot read or write a policy file: deploy/lab: is a directory, not a file [MEMBRANE_ERR_POLICY_IO]\n');
  });

  it('lab up of a missing spec', () => {
    const r = membrane(['lab', 'up', '/nonexistent.yaml']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('Error: invalid lab spec: /nonexistent.yaml: no such file or directory [MEMBRANE_ERR_LAB_SPEC]\n');
  });
});

describe('agent counts: usage errors (exit 2) naming the flag and its unit, before anything starts', () => {
  it('--flow-buffer 0 is a usage error, not a FlowRing failure', () => {
    const dir = tempDir('flowbuf');
    const r = agent(dir, ['--flow-buffer', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--flow-buffer 0: must be a whole number of flows from 1 to 1048576 [MEMBRANE_ERR_CLI_USAGE]');
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('--proxy-workers -1 names worker threads, not seconds; 99 is over the bound', () => {
    const dir = tempDir('workers');
    const neg = agent(dir, ['--proxy-workers=-1']);
    expect(neg.status).toBe(2);
    expect(neg.stderr).toContain("option '--proxy-workers <n>' argument '-1' is invalid. expected a whole number of worker threads (0 or more)");
    expect(neg.stderr.split('\n')[0]).not.toContain('seconds');
    const big = agent(dir, ['--proxy-workers', '99']);
    expect(big.status).toBe(2);
    expect(big.stderr).toContain('--proxy-workers 99: must be a whole number of worker threads from 0 to 64 [MEMBRANE_ERR_CLI_USAGE]');
  });

  it('other counts name their own unit', () => {
    const dir = tempDir('units');
    expect(agent(dir, ['--tofqdns-endpoint-max-ip-per-hostname', 'x']).stderr).toContain('expected a whole number of IPs');
    expect(agent(dir, ['--tofqdns-proxy-response-max-delay', 'x']).stderr).toContain('expected a duration such as 100ms');
    expect(agent(dir, ['--http-request-timeout', 'x']).stderr).toContain('expected a whole number of seconds');
    const prio = agent(dir, ['--proxy-worker-priority', '21']);
    expect(prio.status).toBe(2);
    expect(prio.stderr).toContain('--proxy-worker-priority 21: must be a whole number of nice steps from 0 to 20 [MEMBRANE_ERR_CLI_USAGE]');
  });

  it('a duration flag\'s default is shown as a duration, as its value is written', () => {
    const help = membrane(['agent', '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('--tofqdns-proxy-response-max-delay <duration> longest a DNS answer waits');
    expect(help).toMatch(/--tofqdns-proxy-response-max-delay <duration> [^-]*\(default: 100ms\)/);
  });
});

describe('--hubble-listen-address without its TLS files', () => {
  it('is a usage error naming the missing flags, before the network namespace, datapath or sockets exist', () => {
    const dir = tempDir('hubbletls');
    const netns = 'membrane-fixdefects-never';
    const r = agent(dir, ['--netns', netns, '--hubble-listen-address', '127.0.0.1:4244']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      '--hubble-listen-address 127.0.0.1:4244 requires --hubble-tls-cert-file, --hubble-tls-key-file, --hubble-tls-client-ca-files',
    );
    expect(r.stderr).toContain('[MEMBRANE_ERR_CLI_USAGE]');
    expect(existsSync(`/run/netns/${netns}`)).toBe(false);
    expect(existsSync(join(dir, 'agent.sock'))).toBe(false);
    const some = agent(dir, ['--hubble-listen-address', '127.0.0.1:4244', '--hubble-tls-cert-file', 'c.pem', '--hubble-tls-key-file', 'k.pem']);
    expect(some.status).toBe(2);
    expect(some.stderr).toContain('requires --hubble-tls-client-ca-files (');
  });
});

describe('a closed standard output', () => {
  it('ends the CLI quietly with status 141 (SIGPIPE, as cilium and kubectl), not an unhandled EPIPE', async () => {
    const child = spawn(process.execPath, [CLI, 'policy', 'validate', STARWARS], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader goes away before the CLI writes, as `| head -1` does after its line.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect(stderr).toBe('');
    expect(status).toBe(141);
  });
});

describe('a user who is not root is told so, not that the agent is down', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root && !process.env.CI)('the agent API socket is root-only (0600): EACCES names that, not "is the agent running?"', async () => {
    const { createServer } = await import('node:net');
    const { chmodSync, chownSync, mkdtempSync, rmSync } = await import('node:fs');
    const { spawnSync } = await import('node:child_process');
    const dir = mkdtempSync('/tmp/mb-eacces-');
    const socket = join(dir, 'agent.sock');
    const server = createServer((c) => c.end());
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    // Owner-only and owned by someone else; the CLI runs as root without the capabilities that
    // override file modes (CAP_DAC_*), so it meets the mode as a user who is not root does, while
    // it can still read its own files in any checkout.
    chmodSync(socket, 0o600);
    chownSync(socket, 65534, 65534);
    try {
      const r = spawnSync('setpriv', ['--bounding-set=-dac_override,-dac_read_search', process.execPath, CLI, '--api-socket', socket, 'status'], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('permission denied');
      expect(r.stderr).toContain('root-only: run the command as root');
      expect(r.stderr).not.toContain('is `membrane agent` running?');
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
