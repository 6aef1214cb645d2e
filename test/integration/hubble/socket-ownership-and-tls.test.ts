/**
 * Regression tests (fix-defects): a second agent must not take over the first agent's Hubble
 * socket, nor delete it on exit; only a dead socket file is replaced. And `membrane observe
 * --server HOST:PORT` reaches the agent's mutual-TLS listener with the hubble CLI's TLS flags.
 * Real gRPC servers and the built CLI as a child process.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropFlow, FlowRing, type Flow } from '../../../src/observe/index.js';
import { HubbleServer, ObserverClient } from '../../../src/hubble/index.js';
import { deathstarW, IPS, tiefighter } from '../../unit/observe/fixtures.js';

const CLI = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));
const quiet = { info: () => {}, warn: () => {} };

function server(ring = new FlowRing({ capacity: 4 })): HubbleServer {
  return new HubbleServer({ flows: ring, nodeName: 'node-1', version: 'v' }, quiet);
}

async function flowsAt(path: string): Promise<Flow[]> {
  const client = new ObserverClient(`unix://${path}`);
  try {
    const got: Flow[] = [];
    await client.getFlows({ number: 5, filters: {} }, (f) => got.push(f));
    return got;
  } finally {
    client.close();
  }
}

const ino = (path: string): number => lstatSync(path).ino;

function oneDrop(): FlowRing {
  const ring = new FlowRing({ capacity: 4 });
  ring.push(dropFlow({ source: tiefighter, destination: deathstarW, ip: { source: IPS.tiefighter, destination: IPS.deathstarW }, direction: 'INGRESS', nodeName: 'node-2', reason: 181 }));
  return ring;
}

describe('the Hubble socket belongs to the agent that serves it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'membrane-hubble-own-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a second server is refused while the first answers, and the first keeps serving on the same socket', async () => {
    const path = join(dir, 'live.sock');
    const first = server(oneDrop());
    await first.listen({ socketPath: path });
    const before = ino(path);
    const second = server();
    try {
      const err = await second.listen({ socketPath: path }).then(() => null, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'MEMBRANE_ERR_HUBBLE_LISTEN' });
      expect((err as Error).message).toBe(
        `the Hubble observer cannot listen: ${path}: another process is serving on this socket (is another agent running?); stop it or choose another path`,
      );
      await second.close();
      // The refused server's exit leaves the first's socket alone.
      expect(ino(path)).toBe(before);
      expect((await flowsAt(path)).map((f) => f.verdict)).toEqual(['DROPPED']);
    } finally {
      await first.close();
    }
    expect(existsSync(path)).toBe(false);
  });

  it('a dead socket file left by a killed agent is replaced', async () => {
    const path = join(dir, 'dead.sock');
    // A process that binds the socket and dies without removing it (SIGKILL).
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(lstatSync(path).isSocket()).toBe(true);
    const s = server(oneDrop());
    await s.listen({ socketPath: path });
    try {
      expect((await flowsAt(path)).length).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('on exit a server removes only the socket file it created, not a successor\'s at the same path', async () => {
    const path = join(dir, 'successor.sock');
    const old = server();
    await old.listen({ socketPath: path });
    rmSync(path);
    const successor = server(oneDrop());
    await successor.listen({ socketPath: path });
    try {
      await old.close();
      expect(existsSync(path)).toBe(true);
      expect((await flowsAt(path)).length).toBe(1);
    } finally {
      await successor.close();
    }
  });
});

describe('membrane observe --server HOST:PORT against the mutual-TLS listener', () => {
  const dir = mkdtempSync(join(tmpdir(), 'membrane-observe-tls-'));
  const s = server(oneDrop());
  const NAME = 'node-2.hubble-grpc.cilium.io';

  beforeAll(async () => {
    const selfSigned = (name: string, cn: string): void => {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${cn}`,
        '-addext', `subjectAltName=DNS:${cn}`, '-keyout', join(dir, `${name}-key.pem`), '-out', join(dir, `${name}.pem`)], { stdio: 'ignore' });
    };
    selfSigned('server', NAME);
    selfSigned('client', 'hubble-relay-client.hubble-grpc.cilium.io');
    await s.listen({
      socketPath: null,
      listenAddress: '127.0.0.1:0',
      tlsCertFile: join(dir, 'server.pem'),
      tlsKeyFile: join(dir, 'server-key.pem'),
      tlsClientCaFiles: [join(dir, 'client.pem')],
    });
  });
  afterAll(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The CLI as a child process, asynchronously: the server runs in this process. */
  function observe(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, 'observe', '--server', s.addresses[0] as string, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  it('with --tls, the CA, a client certificate and the server name: the flows are printed', async () => {
    const r = await observe([
      '--tls', '--tls-ca-cert-files', join(dir, 'server.pem'), '--tls-client-cert-file', join(dir, 'client.pem'),
      '--tls-client-key-file', join(dir, 'client-key.pem'), '--tls-server-name', NAME, '-o', 'json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const flows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { flow: { verdict: string; drop_reason_desc: string } });
    expect(flows.map((f) => [f.flow.verdict, f.flow.drop_reason_desc])).toEqual([['DROPPED', 'POLICY_DENY']]);
  });

  it('without a client certificate the listener refuses it (exit 1, coded)', async () => {
    const r = await observe(['--tls', '--tls-ca-cert-files', join(dir, 'server.pem'), '--tls-server-name', NAME]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/\[MEMBRANE_ERR_[A-Z_]+\]\n$/);
  });

  it('TLS flags without --tls, or a certificate without its key, are usage errors', async () => {
    const noTls = await observe(['--tls-client-cert-file', join(dir, 'client.pem')]);
    expect(noTls.status).toBe(2);
    expect(noTls.stderr).toBe('Error: invalid command line: --tls-client-cert-file given without --tls [MEMBRANE_ERR_CLI_USAGE]\n');
    const noKey = await observe(['--tls', '--tls-client-cert-file', join(dir, 'client.pem')]);
    expect(noKey.status).toBe(2);
    expect(noKey.stderr).toContain('--tls-client-cert-file and --tls-client-key-file go together');
    const missing = await observe(['--tls', '--tls-ca-cert-files', join(dir, 'nope.pem')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`Error: invalid command line: ${join(dir, 'nope.pem')}: no such file or directory [MEMBRANE_ERR_CLI_USAGE]\n`);
  });
});
