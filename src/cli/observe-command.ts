/**
 * `membrane observe` over the agent's Hubble observer API (gRPC, Hubble's observer.proto): the
 * same request the hubble CLI sends (`number`, `follow`, whitelist/blacklist of FlowFilter), the
 * flows printed by the observe printers exactly as before.
 */
import { dirname, join } from 'node:path';
import { membraneError } from '../errors/index.js';
import { DAYS, MONTHS, type FilterSet, type Flow } from '../observe/index.js';
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

const DURATION_UNITS_NS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const GO_DURATION = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)(?:\s+ago)?$/;
const DAY_NAMES = `(?:${DAYS.join('|')})`;
const ZONE = '(Z|[+-]\\d\\d:\\d\\d)';

/** Go's time.ParseDuration (`90s`, `1h30m`, `1.5h`, `-5m`, `0`) → nanoseconds, or null. */
function goDurationNs(raw: string): bigint | null {
  if (/^[-+]?0$/.test(raw)) return 0n;
  const m = GO_DURATION.exec(raw);
  if (!m) return null;
  let ns = 0;
  for (const [, n, unit] of (m[2] ?? '').matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ns += Number(n) * (DURATION_UNITS_NS[unit ?? 's'] ?? 0);
  if (!Number.isFinite(ns)) return null;
  const abs = BigInt(Math.round(ns));
  return m[1] === '-' ? -abs : abs;
}

/** `Z` / `+02:00` → offset in minutes east of UTC. */
function zoneMinutes(zone: string): number {
  if (zone === 'Z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  return sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
}

function utcNs(y: number, mo: number, d: number, h: number, mi: number, s: number, frac: string, offsetMin: number): bigint | null {
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return null;
  const ms = Date.UTC(y, mo - 1, d, h, mi, s) - offsetMin * 60_000;
  // Date.UTC rolls Feb 30 over into March; Go refuses it.
  if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d) return null;
  return BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9) || '0');
}

/**
 * The layouts Hubble's `hubtime.FromString` tries after a duration: YearMonthDay (`2026-12-01`,
 * UTC), YearMonthDayHour (`2026-12-01T06Z`), YearMonthDayHourMinute (`2026-12-01T06:13+01:00`),
 * RFC 3339 with any fraction (RFC3339, RFC3339Milli/Micro/Nano), RFC1123Z
 * (`Tue, 01 Dec 2026 06:13:50 +0000`). Also StampMilli (`Dec  1 06:13:50.000`), which Hubble's
 * help lists but its parser refuses: read as UTC (the zone flows print in) in the latest year
 * that does not put it more than a day ahead of now. Nanoseconds since the epoch, or null.
 */
function layoutNs(raw: string, nowMs: number): bigint | null {
  const n = Number;
  let m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(raw);
  if (m) return utcNs(n(m[1]), n(m[2]), n(m[3]), 0, 0, 0, '', 0);
  m = new RegExp(`^(\\d{4})-(\\d\\d)-(\\d\\d)T(\\d\\d)${ZONE}$`).exec(raw);
  if (m) return utcNs(n(m[1]), n(m[2]), n(m[3]), n(m[4]), 0, 0, '', zoneMinutes(m[5] ?? 'Z'));
  m = new RegExp(`^(\\d{4})-(\\d\\d)-(\\d\\d)T(\\d\\d):(\\d\\d)${ZONE}$`).exec(raw);
  if (m) return utcNs(n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5]), 0, '', zoneMinutes(m[6] ?? 'Z'));
  m = new RegExp(`^(\\d{4})-(\\d\\d)-(\\d\\d)T(\\d\\d):(\\d\\d):(\\d\\d)(?:\\.(\\d{1,9}))?${ZONE}$`).exec(raw);
  if (m) return utcNs(n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5]), n(m[6]), m[7] ?? '', zoneMinutes(m[8] ?? 'Z'));
  m = new RegExp(`^${DAY_NAMES}, (\\d\\d) (\\w{3}) (\\d{4}) (\\d\\d):(\\d\\d):(\\d\\d) ([+-]\\d\\d)(\\d\\d)$`).exec(raw);
  if (m) {
    const mo = (MONTHS as readonly string[]).indexOf(m[2] ?? '') + 1;
    if (mo === 0) return null;
    return utcNs(n(m[3]), mo, n(m[1]), n(m[4]), n(m[5]), n(m[6]), '', zoneMinutes(`${m[7]}:${m[8]}`));
  }
  m = /^(\w{3}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?$/.exec(raw);
  if (m) {
    const mo = (MONTHS as readonly string[]).indexOf(m[1] ?? '') + 1;
    if (mo === 0) return null;
    const year = new Date(nowMs).getUTCFullYear();
    const at = utcNs(year, mo, n(m[2]), n(m[3]), n(m[4]), n(m[5]), m[6] ?? '', 0);
    if (at !== null && at > BigInt(nowMs + 86_400_000) * 1_000_000n) return utcNs(year - 1, mo, n(m[2]), n(m[3]), n(m[4]), n(m[5]), m[6] ?? '', 0);
    return at;
  }
  return null;
}

/**
 * `--since` / `--until` as hubble takes them (`hubtime.FromString`): a Go duration before now
 * (`90s`, `5m`, `1h30m`, optionally followed by ` ago`), else one of the layouts of `layoutNs`.
 * Returns nanoseconds since the epoch; a usage error names the flag otherwise.
 */
export function parseTimeFlag(flag: string, raw: string, nowMs: number = Date.now()): bigint {
  const text = raw.trim();
  const rel = goDurationNs(text);
  if (rel !== null) return BigInt(nowMs) * 1_000_000n - rel;
  const at = layoutNs(text, nowMs);
  if (at === null) {
    throw membraneError(
      'MEMBRANE_ERR_CLI_USAGE',
      `${flag} ${raw}: expected a duration before now (90s, 5m, 1h30m) or a time: 2026-12-01, 2026-12-01T10Z, 2026-12-01T10:00Z, RFC 3339 (2026-12-01T10:00:00Z, any fraction), RFC 1123Z (Tue, 01 Dec 2026 10:00:00 +0000) or StampMilli (Dec  1 10:00:00.000, UTC)`,
    );
  }
  return at;
}

export interface WindowFlags {
  last: string;
  first?: string;
  since?: string;
  until?: string;
  follow?: boolean;
  all?: boolean;
}

/**
 * Which flows `membrane observe` asks for, as the hubble CLI's `getFlowsRequest` decides it:
 * `--first N` the oldest N (not with `--last`, `--all` or `--follow`); `--last N` the newest N;
 * `--all` every flow held (not with `--last`); with `--since`/`--until` and no `--last`, every
 * flow in that range; otherwise the last 20, or with `--follow` only new flows. `--until` is not
 * sent with `--follow` (hubble drops it too).
 */
/** `--all`'s count: more flows than any ring holds (hubble: math.MaxUint64). */
export const ALL_FLOWS = Number.MAX_SAFE_INTEGER;

export function observeWindow(f: WindowFlags, lastGiven: boolean, nowMs: number = Date.now()): Pick<ObserveRequest, 'last' | 'first' | 'since' | 'until'> {
  const first = f.first !== undefined;
  if (first && lastGiven) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'cannot set both --first and --last');
  if (first && f.all) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'cannot set both --first and --all');
  if (first && f.follow) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'cannot set both --first and --follow');
  if (lastGiven && f.all) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'cannot set both --last and --all');
  const since = f.since === undefined ? undefined : parseTimeFlag('--since', f.since, nowMs);
  const until = f.until === undefined || f.follow ? undefined : parseTimeFlag('--until', f.until, nowMs);
  const range = { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
  if (first) return { last: countFlag('--first', f.first ?? ''), first: true, ...range };
  if (lastGiven) return { last: countFlag('--last', f.last), ...range };
  // --all asks for every flow held, also with --follow (hubble sends number = MaxUint64): a
  // number of 0 with follow would mean "only new flows".
  if (f.all) return { last: ALL_FLOWS, ...range };
  if (since !== undefined || until !== undefined || f.follow) return { last: 0, ...range };
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
  /** Hubble's `-s`/`--silent-errors`: no lost-events warnings on stderr. */
  silentErrors?: boolean;
}

/** Everything commander parses for `membrane observe` (the filter flags come as arguments). */
export interface ObserveOptions extends WindowFlags, TlsFlags {
  output: string;
  server?: string;
  printNodeName?: boolean;
  timeFormat: string;
  numeric?: boolean;
  ipTranslation?: boolean;
  color: string;
  allowlist?: string[];
  denylist?: string[];
  printRawFilters?: boolean;
  silentErrors?: boolean;
}

/**
 * `hubble observe` flags outside the filters that Membrane refuses, with why (exit 2): accepting
 * them silently would print something other than what the user asked for.
 */
export const UNSUPPORTED_OBSERVE_FLAGS: Readonly<Record<string, string>> = {
  '--input-file': 'flows are read from the agent only (save them with -o json and filter with jq)',
  '--field-mask': 'the observer API sends whole flows (GetFlowsRequest.experimental.field_mask is not implemented)',
  '--use-default-field-masks': 'the observer API sends whole flows (GetFlowsRequest.experimental.field_mask is not implemented)',
  '--experimental-field-mask': 'the observer API sends whole flows (GetFlowsRequest.experimental.field_mask is not implemented)',
  '--experimental-use-default-field-masks': 'the observer API sends whole flows (GetFlowsRequest.experimental.field_mask is not implemented)',
  '--print-policy-names': 'not implemented; the policies are in -o json as ingress_allowed_by/egress_allowed_by/…_denied_by',
  '--config': 'Membrane reads no hubble config file; give the flags on the command line',
  '--debug': 'not implemented; errors always print with their code',
  '--timeout': 'not implemented; the connection attempt fails fast when nothing listens',
  '--request-timeout': 'not implemented',
  '--port-forward': 'there is no Kubernetes API to port-forward through; use --server',
  '--port-forward-port': 'there is no Kubernetes API to port-forward through; use --server',
  '--kube-context': 'there is no Kubernetes API; use --server',
  '--kube-namespace': 'there is no Kubernetes API; use --server',
  '--kubeconfig': 'there is no Kubernetes API; use --server',
  '--tls-allow-insecure': 'the agent\'s TCP listener requires a verified mutual-TLS connection',
  '--basic-auth-username': 'the agent authenticates clients by TLS certificate only',
  '--basic-auth-password': 'the agent authenticates clients by TLS certificate only',
  '-P': 'there is no Kubernetes API to port-forward through; use --server',
  '-D': 'not implemented; errors always print with their code',
  '-A': 'not implemented in Membrane\'s namespace filter; leave out --namespace instead',
};

const yamlSingleQuoted = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * `--print-raw-filters`: the request's allowlist and denylist as hubble prints them (yaml.v3 of
 * each FlowFilter's proto3 JSON), `{}` when there are none. Loads the protos.
 */
export async function rawFiltersYaml(filters: FilterSet): Promise<string> {
  const { filterToProto } = await import('../hubble/index.js');
  const { protoJsonOf } = await import('./observe-jsonpb.js');
  const json = await protoJsonOf('flow.FlowFilter');
  const list = (specs: readonly FilterSet['allow'][number][]): string[] => specs.map((f) => json(filterToProto(f)));
  const allow = list(filters.allow);
  const deny = list(filters.deny);
  if (allow.length === 0 && deny.length === 0) return '{}\n';
  let out = '';
  if (allow.length) out += `allowlist:\n${allow.map((f) => `    - ${yamlSingleQuoted(f)}\n`).join('')}`;
  if (deny.length) out += `denylist:\n${deny.map((f) => `    - ${yamlSingleQuoted(f)}\n`).join('')}`;
  return out;
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
    await client.getFlows(opts, req.print, ac.signal, (n) => {
      if (!req.silentErrors) process.stderr.write(`EVENTS LOST: HUBBLE_RING_BUFFER ${n}\n`);
    });
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
