/**
 * `membrane observe` over the agent's Hubble observer API (gRPC, Hubble's observer.proto): the
 * same request the hubble CLI sends (`number`, `follow`, whitelist/blacklist of FlowFilter), the
 * flows printed by the observe printers exactly as before.
 */
import { dirname, join } from 'node:path';
import { membraneError } from '../errors/index.js';
import type { FilterSet, Flow } from '../observe/index.js';
import type { ClientTls } from '../hubble/index.js';
import { readInputFile } from './input-file.js';

export const MAX_LAST = 1_000_000;

/** `--last N` / `--first N`: a whole number from 1 to 1 000 000 (Hubble's `number`; 0 would mean "all"). */
export function countFlag(flag: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > MAX_LAST) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${flag} ${raw}: expected a whole number from 1 to ${MAX_LAST}`);
  }
  return n;
}

const DURATION_UNITS_NS: Readonly<Record<string, bigint>> = { ns: 1n, us: 1_000n, µs: 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };

/**
 * `--since` / `--until` as hubble takes them: an RFC 3339 time (`2026-12-01T10:00:00Z`), or a
 * Go-style duration before `now` (`90s`, `5m`, `1h30m`, optionally followed by ` ago`).
 * Returns nanoseconds since the epoch; a usage error names the flag otherwise.
 */
export function parseTimeFlag(flag: string, raw: string, nowMs: number = Date.now()): bigint {
  const rel = /^\s*((?:\d+(?:ns|us|µs|ms|s|m|h))+)(?:\s+ago)?\s*$/.exec(raw);
  if (rel) {
    let ns = 0n;
    for (const [, n, unit] of (rel[1] ?? '').matchAll(/(\d+)(ns|us|µs|ms|s|m|h)/g)) ns += BigInt(n ?? '0') * (DURATION_UNITS_NS[unit ?? 's'] ?? 0n);
    return BigInt(nowMs) * 1_000_000n - ns;
  }
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(raw.trim());
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${flag} ${raw}: expected an RFC 3339 time (2026-12-01T10:00:00Z) or a duration before now (90s, 5m, 1h30m)`);
  }
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

export interface WindowFlags {
  last: string;
  first?: string;
  since?: string;
  until?: string;
  follow?: boolean;
}

/**
 * Which flows `membrane observe` asks for, as the hubble CLI decides it: `--first N` the oldest N
 * (not with `--last` or `--follow`); `--last N` the newest N (default 20); with `--since` or
 * `--until` and no `--last`, every flow in that range.
 */
export function observeWindow(f: WindowFlags, lastGiven: boolean, nowMs: number = Date.now()): Pick<ObserveRequest, 'last' | 'first' | 'since' | 'until'> {
  const since = f.since === undefined ? undefined : parseTimeFlag('--since', f.since, nowMs);
  const until = f.until === undefined ? undefined : parseTimeFlag('--until', f.until, nowMs);
  const range = { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
  if (f.first !== undefined) {
    if (lastGiven) throw membraneError('MEMBRANE_ERR_CLI_USAGE', '--first and --last cannot be combined');
    if (f.follow) throw membraneError('MEMBRANE_ERR_CLI_USAGE', '--first and --follow cannot be combined');
    return { last: countFlag('--first', f.first), first: true, ...range };
  }
  if (!lastGiven && (since !== undefined || until !== undefined)) return { last: 0, ...range };
  return { last: countFlag('--last', f.last), ...range };
}

export interface ObserveRequest {
  /** Flows to ask for: the last N, or with `first` the oldest N; 0 = all (in the time range). */
  last: number;
  first?: boolean;
  since?: bigint;
  until?: bigint;
  follow: boolean;
  filters: FilterSet;
  print: (flow: Flow) => void;
}

/**
 * Prints the requested flows, then (with `follow`) every new one until SIGINT. `server` is
 * hubble's `--server`; by default the agent's hubble.sock beside its API socket.
 * Errors: the agent's (e.g. MEMBRANE_ERR_OBSERVE_FILTER), or MEMBRANE_ERR_AGENT_UNREACHABLE.
 */
export async function observeFlows(server: string | undefined, apiSocket: string, req: ObserveRequest, tls: ClientTls | null = null): Promise<void> {
  // gRPC is loaded only by the command that needs it: every other command starts faster.
  const { ObserverClient, HUBBLE_SOCKET_NAME } = await import('../hubble/index.js');
  const client = new ObserverClient(server ?? `unix://${join(dirname(apiSocket), HUBBLE_SOCKET_NAME)}`, tls);
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  if (req.follow) process.once('SIGINT', onSigint);
  try {
    const opts = {
      number: req.last,
      follow: req.follow,
      filters: req.filters,
      ...(req.first ? { first: true } : {}),
      ...(req.since !== undefined ? { since: req.since } : {}),
      ...(req.until !== undefined ? { until: req.until } : {}),
    };
    await client.getFlows(opts, req.print, ac.signal, (n) =>
      process.stderr.write(`EVENTS LOST: HUBBLE_RING_BUFFER ${n}\n`),
    );
  } finally {
    process.off('SIGINT', onSigint);
    client.close();
  }
}

/** The hubble CLI's TLS flags (cilium/hubble cmd/common/config/flags.go), as commander gives them. */
export interface TlsFlags {
  tls?: boolean;
  tlsCaCertFiles?: string[];
  tlsClientCertFile?: string;
  tlsClientKeyFile?: string;
  tlsServerName?: string;
}

/**
 * TLS for `--server` from the flags; null without `--tls`. The agent's TCP listener needs a client
 * certificate (mutual TLS). Errors: MEMBRANE_ERR_CLI_USAGE for a `--tls-*` flag without `--tls`,
 * a certificate without its key (or the reverse), or a file that cannot be read (named).
 */
export function clientTls(f: TlsFlags): ClientTls | null {
  const given = [
    f.tlsCaCertFiles?.length ? '--tls-ca-cert-files' : null,
    f.tlsClientCertFile ? '--tls-client-cert-file' : null,
    f.tlsClientKeyFile ? '--tls-client-key-file' : null,
    f.tlsServerName ? '--tls-server-name' : null,
  ].filter((x): x is string => x !== null);
  if (!f.tls) {
    if (given.length) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${given.join(', ')} given without --tls`);
    return null;
  }
  if (!f.tlsClientCertFile !== !f.tlsClientKeyFile) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', '--tls-client-cert-file and --tls-client-key-file go together (mutual TLS needs both)');
  }
  const read = (file: string): Buffer => Buffer.from(readInputFile(file, 'MEMBRANE_ERR_CLI_USAGE'), 'utf8');
  const cas = (f.tlsCaCertFiles ?? []).flatMap((x) => x.split(',')).filter(Boolean);
  return {
    ca: cas.length ? Buffer.concat(cas.map(read)) : null,
    cert: f.tlsClientCertFile ? read(f.tlsClientCertFile) : null,
    key: f.tlsClientKeyFile ? read(f.tlsClientKeyFile) : null,
    serverName: f.tlsServerName ?? null,
  };
}
