/** `membrane agent`: runs the agent in this process (re-executed inside --netns when given). */
import { spawn } from 'node:child_process';
import { withAgentNodeFlags } from './agent-node-flags.js';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { Agent, DEFAULT_AGENT_CONFIG, type AgentConfig } from '../agent/index.js';
import { run } from '../datapath/index.js';
import { membraneError } from '../errors/index.js';
import { parseServeAddr } from '../metrics/index.js';
import { tracingConfig } from '../tracing/index.js';

export interface AgentCommandOptions {
  policyDir: string;
  stateDir: string;
  pinRoot: string;
  netns?: string;
  httpProxyPort: string;
  dnsProxyPort: string;
  tlsProxyPort: string;
  nodeName?: string;
  accessLog?: string;
  accessLogMaxSizeMb: string;
  accessLogMaxBackups: string;
  accessLogRotateInterval: string;
  /** `--access-log-sample-rate`: share of forwarded requests logged, (0, 1]. */
  accessLogSampleRate: string;
  flowBuffer: string;
  /** Cilium's `--hubble-socket-path`, `--hubble-listen-address`, `--hubble-tls-cert-file`, `--hubble-tls-key-file`. */
  hubbleSocketPath?: string;
  hubbleListenAddress?: string;
  hubbleTlsCertFile?: string;
  hubbleTlsKeyFile?: string;
  hubbleTlsClientCaFiles?: string;
  logLevel: string;
  apiSocket: string;
  /** Cilium's `--http-request-timeout` (seconds, 0 = unlimited). */
  httpRequestTimeout: string;
  /** Cilium's `--http-normalize-path` (true | false). */
  httpNormalizePath: boolean;
  /** Cilium's `--tofqdns-dns-reject-response-code`. */
  tofqdnsDnsRejectResponseCode: 'refused' | 'nameError';
  /** Cilium's `--tofqdns-min-ttl`, seconds. */
  tofqdnsMinTtl: string;
  /** Cilium's `--tofqdns-endpoint-max-ip-per-hostname`. */
  tofqdnsEndpointMaxIpPerHostname: string;
  /** Cilium's `--tofqdns-proxy-response-max-delay`, ms. */
  tofqdnsProxyResponseMaxDelay: string;
  /** Cilium's `--prometheus-serve-addr` (`IP:Port`); absent: no metrics listener. */
  prometheusServeAddr?: string;
  /** `--otlp-endpoint` (OTLP/HTTP base URL); absent: the OTEL_EXPORTER_OTLP_* variables decide. */
  otlpEndpoint?: string;
  /** `--proxy-workers`: absent = the default (CPUs, at most 8); 0 = in-process proxies. */
  proxyWorkers?: string;
  /** `--control-plane-nice`: absent = DEFAULT_CONTROL_PLANE_NICE. */
  controlPlaneNice?: string;
  /** `--proxy-worker-priority`: absent = defaultWorkerPriority. */
  proxyWorkerPriority?: string;
}

const IN_NETNS = 'MEMBRANE_AGENT_NETNS';

export async function runAgent(opts: AgentCommandOptions): Promise<void> {
  // Every flag is checked before anything starts (namespace, datapath, workers, sockets): bad
  // input is a usage error (exit 2) that leaves nothing behind.
  const config = agentConfig(opts);
  if (opts.netns && process.env[IN_NETNS] !== opts.netns) {
    // Only the network namespace changes (nsenter --net): /sys/fs/bpf and the state
    // directory stay the host's, unlike `ip netns exec`, which remounts /sys.
    if (!existsSync(`/run/netns/${opts.netns}`)) run('ip', ['netns', 'add', opts.netns]);
    const child = spawn('nsenter', [`--net=/run/netns/${opts.netns}`, process.execPath, ...withAgentNodeFlags(process.execArgv), ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [IN_NETNS]: opts.netns },
    });
    // nsenter execs node, so the child is the agent itself: pass our signals on and leave
    // with its status, so whoever started us can stop it with a plain SIGTERM.
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
    process.exitCode = await new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    return;
  }
  await startAgent(config);
}

/** The agent's configuration from the flags. Errors: MEMBRANE_ERR_CLI_USAGE naming the flag. */
function agentConfig(opts: AgentCommandOptions): AgentConfig {
  checkHubbleTls(opts);
  return {
    ...DEFAULT_AGENT_CONFIG,
    policyDir: opts.policyDir,
    stateDir: opts.stateDir,
    pinRoot: opts.pinRoot,
    apiSocket: opts.apiSocket,
    httpProxyPort: Number(opts.httpProxyPort),
    dnsProxyPort: Number(opts.dnsProxyPort),
    tlsProxyPort: Number(opts.tlsProxyPort),
    nodeName: opts.nodeName ?? opts.netns ?? hostname(),
    netns: opts.netns ?? null,
    flowBuffer: wholeNumber('--flow-buffer', opts.flowBuffer, 1, MAX_FLOW_BUFFER, 'flows'),
    ...(opts.hubbleSocketPath ? { hubbleSocketPath: opts.hubbleSocketPath } : {}),
    hubbleListenAddress: opts.hubbleListenAddress ?? null,
    hubbleTlsCertFile: opts.hubbleTlsCertFile ?? null,
    hubbleTlsKeyFile: opts.hubbleTlsKeyFile ?? null,
    hubbleTlsClientCaFiles: opts.hubbleTlsClientCaFiles ? opts.hubbleTlsClientCaFiles.split(',').filter(Boolean) : [],
    accessLog: opts.accessLog ?? null,
    accessLogMaxSizeMb: positiveNumber('--access-log-max-size-mb', opts.accessLogMaxSizeMb, false),
    accessLogMaxBackups: positiveNumber('--access-log-max-backups', opts.accessLogMaxBackups, true),
    accessLogRotateIntervalMinutes: rotateInterval(opts.accessLogRotateInterval),
    accessLogSampleRate: sampleRate('--access-log-sample-rate', opts.accessLogSampleRate),
    logLevel: opts.logLevel,
    httpRequestTimeout: Number(opts.httpRequestTimeout),
    httpNormalizePath: opts.httpNormalizePath,
    dnsRejectResponseCode: opts.tofqdnsDnsRejectResponseCode,
    tofqdnsMinTtl: Number(opts.tofqdnsMinTtl),
    tofqdnsMaxIpPerHostname: Number(opts.tofqdnsEndpointMaxIpPerHostname),
    tofqdnsProxyResponseMaxDelayMs: Number(opts.tofqdnsProxyResponseMaxDelay),
    // Checked here so a bad address is a usage error (exit 2) before anything starts.
    prometheusServeAddr: opts.prometheusServeAddr === undefined ? null : (parseServeAddr(opts.prometheusServeAddr), opts.prometheusServeAddr),
    // Checked here too (flag and OTEL_* variables), so a bad value exits 2 before anything starts.
    otlpEndpoint: (tracingConfig(opts.otlpEndpoint ?? null, 'check'), opts.otlpEndpoint ?? null),
    proxyWorkers: opts.proxyWorkers === undefined ? DEFAULT_AGENT_CONFIG.proxyWorkers : wholeNumber('--proxy-workers', opts.proxyWorkers, 0, MAX_PROXY_WORKERS, 'worker threads'),
    ...(opts.controlPlaneNice === undefined ? {} : { controlPlaneNice: wholeNumber('--control-plane-nice', opts.controlPlaneNice, 0, 19, 'nice steps') }),
    ...(opts.proxyWorkerPriority === undefined ? {} : { proxyWorkerPriority: wholeNumber('--proxy-worker-priority', opts.proxyWorkerPriority, 0, 20, 'nice steps') }),
  };
}

/**
 * Runs the agent until SIGTERM/SIGINT. A start that fails part way tears down what had started
 * (workers, sockets, listeners; the pinned datapath stays, as on a normal stop) and rethrows, so
 * the CLI prints the coded error and exits 1 instead of leaving a half-started agent running.
 */
async function startAgent(config: AgentConfig): Promise<void> {
  const agent = new Agent(config);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    agent.log.info({ signal }, 'stopping');
    agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        agent.log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await agent.start();
  } catch (err) {
    agent.log.error({ err }, 'start failed; stopping what had started');
    try {
      await agent.stop();
    } catch (stopErr) {
      agent.log.error({ err: stopErr }, 'stop after a failed start failed');
    }
    // Whatever a failed start may have left open must not keep the process alive.
    setTimeout(() => process.exit(1), 2000).unref();
    throw err;
  }
}

/**
 * Most worker threads `--proxy-workers` takes. Each worker is a thread with its own V8 heap
 * (tens of MiB) and its own listener per proxy; beyond a few per core they only contend. 64 is
 * Envoy-scale headroom for large nodes (Envoy's --concurrency defaults to the core count).
 */
export const MAX_PROXY_WORKERS = 64;

/** Most flows `--flow-buffer` keeps: the ring is memory (a flow is about 1 KiB), bounded like every buffer. */
export const MAX_FLOW_BUFFER = 1 << 20;

/** A whole number in [min, max], else a usage error naming the flag and the unit. */
function wholeNumber(flag: string, raw: string, min: number, max: number, unit: string): number {
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw.trim()) || n < min || n > max) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${flag} ${raw}: must be a whole number of ${unit} from ${min} to ${max}`);
  }
  return n;
}

/** Cilium's rule, stricter: a TCP Hubble listener needs its certificate, key and client CAs. */
function checkHubbleTls(opts: AgentCommandOptions): void {
  if (!opts.hubbleListenAddress) return;
  const missing = [
    opts.hubbleTlsCertFile ? null : '--hubble-tls-cert-file',
    opts.hubbleTlsKeyFile ? null : '--hubble-tls-key-file',
    opts.hubbleTlsClientCaFiles?.split(',').some(Boolean) ? null : '--hubble-tls-client-ca-files',
  ].filter((f): f is string => f !== null);
  if (missing.length) {
    throw membraneError(
      'MEMBRANE_ERR_CLI_USAGE',
      `--hubble-listen-address ${opts.hubbleListenAddress} requires ${missing.join(', ')} (clients of the TCP listener must present a certificate; the unix socket needs none)`,
    );
  }
}

/** `--access-log-rotate-interval`: minutes ≥ 0 (fractions allowed), else a usage error (exit 2). */
function rotateInterval(raw: string): number {
  const n = Number(raw);
  if (!raw.trim() || !(Number.isFinite(n) && n >= 0)) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--access-log-rotate-interval ${raw}: must be a number of minutes ≥ 0`);
  return n;
}

/** A share in (0, 1], else a usage error (exit 2). */
function sampleRate(flag: string, raw: string): number {
  const n = Number(raw);
  if (!raw.trim() || !(n > 0 && n <= 1)) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${flag} ${raw}: must be a number in (0, 1]`);
  return n;
}

/** A flag's number: positive (or, with `zeroOk`, a whole number ≥ 0), else a usage error (exit 2). */
function positiveNumber(flag: string, raw: string, zeroOk: boolean): number {
  const n = Number(raw);
  const ok = zeroOk ? Number.isInteger(n) && n >= 0 : Number.isFinite(n) && n > 0;
  if (!raw.trim() || !ok) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${flag} ${raw}: must be ${zeroOk ? 'a whole number ≥ 0' : 'a positive number'}`);
  return n;
}
