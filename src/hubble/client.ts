/**
 * A client of the Hubble observer API (ours or any Hubble server): `membrane observe` uses it.
 * Flows come back as our `Flow` (src/observe), so the printers are the same as before.
 */
import * as grpc from '@grpc/grpc-js';
import { errorFromWire, membraneError, type MembraneError } from '../errors/index.js';
import type { FilterSet, Flow } from '../observe/index.js';
import { filterToProto, flowFromProto, nsToTimestamp } from './convert.js';
import { observerPackage } from './proto.js';
import { ERROR_CODE_METADATA } from './server.js';

type Obj = Record<string, unknown>;

export interface GetFlowsOptions {
  /** Last N flows (first N with `first`); 0 = all held. */
  number: number;
  first?: boolean;
  follow?: boolean;
  filters: Partial<FilterSet>;
  /** Nanoseconds since the epoch. */
  since?: bigint;
  until?: bigint;
}

export interface ServerStatus {
  num_flows: number;
  max_flows: number;
  seen_flows: number;
  uptime_ns: number;
  version: string;
}

/** `unix:///path`, `unix:/path` or `host:port` (hubble's `--server` forms). */
export function serverTarget(server: string): string {
  if (server.startsWith('unix:')) return `unix://${server.replace(/^unix:(\/\/)?/, '')}`;
  return server;
}

/**
 * TLS toward a Hubble server, as the hubble CLI's `--tls`, `--tls-ca-cert-files`,
 * `--tls-client-cert-file`, `--tls-client-key-file`, `--tls-server-name` (cilium/hubble
 * cmd/common/config/flags.go). PEM contents, not paths (the CLI reads the files).
 */
export interface ClientTls {
  /** CAs the server certificate must chain to; null: the system's roots. */
  readonly ca: Buffer | null;
  /** Client certificate and key for mutual TLS (the agent's TCP listener requires them). */
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  /** Name the server certificate must carry, when it is not the host in `--server`. */
  readonly serverName: string | null;
}

export class ObserverClient {
  readonly server: string;
  #client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  /** `tls` null: plaintext (the unix socket); else TLS as ClientTls describes. */
  constructor(server: string, tls: ClientTls | null = null) {
    this.server = server;
    const { Client } = observerPackage();
    const credentials = tls ? grpc.credentials.createSsl(tls.ca, tls.key, tls.cert) : grpc.credentials.createInsecure();
    const options: grpc.ClientOptions = tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {};
    this.#client = new Client(serverTarget(server), credentials, options) as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  }

  /**
   * Streams flows to `onFlow` until the server ends the stream or `signal` aborts (then it resolves).
   * `onLost` hears how many flows the server could not send because this reader fell behind.
   * Errors: the server's Membrane error with its code (e.g. MEMBRANE_ERR_OBSERVE_FILTER), or
   * MEMBRANE_ERR_AGENT_UNREACHABLE when nothing answers at the address.
   */
  getFlows(opts: GetFlowsOptions, onFlow: (flow: Flow) => void, signal?: AbortSignal, onLost?: (n: number) => void): Promise<void> {
    const req: Obj = {
      number: opts.number,
      first: opts.first ?? false,
      follow: opts.follow ?? false,
      whitelist: (opts.filters.allow ?? []).map(filterToProto),
      blacklist: (opts.filters.deny ?? []).map(filterToProto),
    };
    if (opts.since !== undefined) req.since = nsToTimestamp(opts.since);
    if (opts.until !== undefined) req.until = nsToTimestamp(opts.until);
    return new Promise((resolve, reject) => {
      const call = this.#client.GetFlows(req) as grpc.ClientReadableStream<Obj>;
      const onAbort = (): void => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      call.on('data', (msg: Obj) => {
        if (msg.flow) onFlow(flowFromProto(msg.flow as Obj));
        else if (msg.lost_events) onLost?.(Number((msg.lost_events as Obj).num_events_lost ?? 0));
      });
      call.on('error', (err: grpc.ServiceError) => {
        signal?.removeEventListener('abort', onAbort);
        if (err.code === grpc.status.CANCELLED && signal?.aborted) resolve();
        else reject(this.#error(err));
      });
      call.on('end', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  serverStatus(): Promise<ServerStatus> {
    return this.#unary<ServerStatus>('ServerStatus', {});
  }

  getNodes(): Promise<{ nodes: Obj[] }> {
    return this.#unary('GetNodes', {});
  }

  #unary<T>(method: string, req: Obj): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#client[method]?.(req, (err: grpc.ServiceError | null, res: T) => (err ? reject(this.#error(err)) : resolve(res)));
    });
  }

  #error(err: grpc.ServiceError): MembraneError {
    const code = err.metadata?.get(ERROR_CODE_METADATA)[0];
    if (typeof code === 'string') return errorFromWire({ code, message: err.details }, { grpcCode: err.code });
    if (err.code === grpc.status.UNAVAILABLE) {
      return membraneError('MEMBRANE_ERR_AGENT_UNREACHABLE', `${this.server}: ${err.details} (is \`membrane agent\` running?)`, { cause: err });
    }
    return membraneError('MEMBRANE_ERR_AGENT_API', `${this.server}: ${grpc.status[err.code] ?? err.code}: ${err.details}`, { cause: err, details: { grpcCode: err.code } });
  }

  close(): void {
    this.#client.close();
  }
}
