/**
 * The Hubble observer (`observer.Observer`, Hubble's gRPC API) over the agent's flow ring, on a
 * root-only unix socket and, opt-in, on TCP with mutual TLS (Cilium: `--hubble-socket-path`,
 * `--hubble-listen-address`, `--hubble-tls-cert-file`, `--hubble-tls-key-file`,
 * `--hubble-tls-client-ca-files`). Unlike Cilium, the client CA is required: flows are never
 * readable over the network by an unauthenticated client.
 *
 * GetFlows follows Hubble's LocalObserverServer (cilium `pkg/hubble/observer/local_observer.go`):
 * `first` with `follow` is INVALID_ARGUMENT; `first` reads from the oldest flow; `follow` with
 * `number` 0 and no `since` streams only new flows; otherwise the reader rewinds until it has
 * passed `number` matching flows (all of them for 0) or reached `since`, then reads forward,
 * skipping flows before `since`, ending at the first flow after `until`, and (without `follow`)
 * after `number` flows. A flow is sent when it matches any whitelist filter (or there are none)
 * and no blacklist filter; within a filter every field set must match.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { isMembraneError, membraneError } from '../errors/index.js';
import { compileFilters, type FilterFunc, type Flow, type FlowRing } from '../observe/index.js';
import { filterFromProto, flowToProto, nsToTimestamp, timeToNs, timestampToNs, UnsupportedFilterError, type PbTimestamp } from './convert.js';
import { observerPackage } from './proto.js';
import { abandonBinding, bindingPath, claimSocketPath, publishSocket, removeOwnSocket, type SocketFileId } from './socket-file.js';

/** The agent's default socket, beside its API socket as Cilium's hubble.sock is beside cilium.sock. */
export const HUBBLE_SOCKET_NAME = 'hubble.sock';

/** Metadata key carrying a Membrane error code with a gRPC error, so the CLI keeps the code. */
export const ERROR_CODE_METADATA = 'membrane-error-code';

/**
 * Messages a follower may have queued before new flows are counted as lost instead (and reported
 * to it as one `LostEvent` from HUBBLE_RING_BUFFER once it catches up).
 */
export const MAX_PENDING_PER_STREAM = 4096;

export interface ObserverSource {
  readonly flows: FlowRing;
  readonly nodeName: string;
  readonly version: string;
}

export interface HubbleListenOptions {
  /** Unix socket path (mode 0600, directory created 0700); null for none. */
  socketPath: string | null;
  /** `host:port` for a TCP listener; requires `tlsCertFile`, `tlsKeyFile` and `tlsClientCaFiles`. */
  listenAddress?: string | null;
  tlsCertFile?: string | null;
  tlsKeyFile?: string | null;
  /** PEM files of the CAs a client certificate must chain to (mutual TLS). */
  tlsClientCaFiles?: readonly string[];
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

type Obj = Record<string, unknown>;

/** Longest error text sent back, characters. */
const MAX_ERROR_DETAILS = 1024;

function grpcError(code: grpc.status, message: string, membraneCode?: string): grpc.ServiceError {
  // The details travel in the grpc-message trailer: a filter value of megabytes echoed whole
  // would pass HTTP/2's header-list limit and the call would never end.
  const details = message.length > MAX_ERROR_DETAILS ? `${message.slice(0, MAX_ERROR_DETAILS)}… (${message.length - MAX_ERROR_DETAILS} more characters)` : message;
  const metadata = new grpc.Metadata();
  if (membraneCode) metadata.set(ERROR_CODE_METADATA, membraneCode);
  return Object.assign(new Error(details), { code, details, metadata });
}

/** The request's whitelist/blacklist as one predicate; bad filters are INVALID_ARGUMENT. */
function requestPredicate(req: Obj): FilterFunc {
  try {
    const allow = ((req.whitelist as Obj[] | undefined) ?? []).map(filterFromProto);
    const deny = ((req.blacklist as Obj[] | undefined) ?? []).map(filterFromProto);
    return compileFilters({ allow, deny });
  } catch (err) {
    if (err instanceof UnsupportedFilterError) throw grpcError(grpc.status.INVALID_ARGUMENT, err.message, 'MEMBRANE_ERR_OBSERVE_FILTER');
    if (isMembraneError(err)) throw grpcError(grpc.status.INVALID_ARGUMENT, err.message, err.code);
    throw err;
  }
}

export class HubbleServer {
  #source: ObserverSource;
  #log: Log;
  #server: grpc.Server;
  #startedNs = process.hrtime.bigint();
  #socketFile: SocketFileId | null = null;
  #addresses: string[] = [];
  #tls = false;

  constructor(source: ObserverSource, log: Log) {
    this.#source = source;
    this.#log = log;
    // No keepalive pings from idle followers' clients are refused: `hubble observe -f` sits idle.
    this.#server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
    const { service } = observerPackage();
    this.#server.addService(service, {
      GetFlows: (call: grpc.ServerWritableStream<Obj, Obj>) => this.#getFlows(call),
      ServerStatus: (_call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => cb(null, this.#status()),
      GetNodes: (_call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => cb(null, { nodes: [this.#node()] }),
      GetAgentEvents: (call: grpc.ServerWritableStream<Obj, Obj>) => call.emit('error', grpcError(grpc.status.UNIMPLEMENTED, 'GetAgentEvents is not implemented by Membrane')),
      GetDebugEvents: (call: grpc.ServerWritableStream<Obj, Obj>) => call.emit('error', grpcError(grpc.status.UNIMPLEMENTED, 'GetDebugEvents is not implemented by Membrane')),
    });
  }

  /** Addresses served, `unix:///…` and/or `host:port`. */
  get addresses(): readonly string[] {
    return this.#addresses;
  }

  /**
   * Binds the listeners. Errors: MEMBRANE_ERR_HUBBLE_LISTEN naming the address (in use, a socket
   * another agent answers on, TLS files unreadable, TCP without a certificate, key or client CA).
   */
  async listen(opts: HubbleListenOptions): Promise<void> {
    if (opts.socketPath) {
      const path = opts.socketPath;
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      await claimSocketPath(path, 'MEMBRANE_ERR_HUBBLE_LISTEN');
      // Bound in a private 0700 directory and made 0600 there before it is moved to `path` (socket-file.ts).
      const bound = bindingPath(path);
      try {
        await this.#bind(`unix://${bound}`, grpc.ServerCredentials.createInsecure());
      } catch (err) {
        abandonBinding(path);
        throw err;
      }
      this.#socketFile = publishSocket(path, 'MEMBRANE_ERR_HUBBLE_LISTEN');
      this.#addresses[this.#addresses.length - 1] = `unix://${path}`;
    }
    if (opts.listenAddress) {
      const cas = opts.tlsClientCaFiles ?? [];
      if (!opts.tlsCertFile || !opts.tlsKeyFile || cas.length === 0) {
        throw membraneError(
          'MEMBRANE_ERR_HUBBLE_LISTEN',
          `${opts.listenAddress}: a TCP listener requires --hubble-tls-cert-file, --hubble-tls-key-file and --hubble-tls-client-ca-files (clients must present a certificate)`,
        );
      }
      let creds: grpc.ServerCredentials;
      try {
        const clientCas = Buffer.concat(cas.map((f) => readFileSync(f)));
        creds = grpc.ServerCredentials.createSsl(clientCas, [{ cert_chain: readFileSync(opts.tlsCertFile), private_key: readFileSync(opts.tlsKeyFile) }], true);
      } catch (err) {
        throw membraneError('MEMBRANE_ERR_HUBBLE_LISTEN', `${opts.listenAddress}: TLS: ${(err as Error).message}`, { cause: err });
      }
      await this.#bind(opts.listenAddress, creds);
      this.#tls = true;
    }
    this.#log.info({ addresses: this.#addresses }, 'Hubble observer serving');
  }

  async #bind(address: string, creds: grpc.ServerCredentials): Promise<void> {
    const port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(address, creds, (err, p) => (err ? reject(membraneError('MEMBRANE_ERR_HUBBLE_LISTEN', `${address}: ${err.message}`, { cause: err })) : resolve(p))),
    );
    this.#addresses.push(address.startsWith('unix://') ? address : address.replace(/:0$/, `:${port}`));
  }

  async close(): Promise<void> {
    // Followers never end by themselves: cancel them rather than wait.
    this.#server.forceShutdown();
    removeOwnSocket(this.#socketFile);
  }

  #status(): Obj {
    const ring = this.#source.flows;
    return {
      num_flows: ring.size,
      max_flows: ring.capacity,
      seen_flows: ring.seen,
      uptime_ns: Number(process.hrtime.bigint() - this.#startedNs),
      version: this.#source.version,
    };
  }

  #node(): Obj {
    const s = this.#status();
    return {
      name: this.#source.nodeName,
      version: s.version,
      address: this.#addresses[0] ?? '',
      state: 'NODE_CONNECTED',
      tls: { enabled: this.#tls },
      uptime_ns: s.uptime_ns,
      num_flows: s.num_flows,
      max_flows: s.max_flows,
      seen_flows: s.seen_flows,
    };
  }

  #getFlows(call: grpc.ServerWritableStream<Obj, Obj>): void {
    const req = call.request;
    const number = Number(req.number ?? 0);
    const first = req.first === true;
    const follow = req.follow === true;
    if (first && follow) {
      call.emit('error', grpcError(grpc.status.INVALID_ARGUMENT, 'first cannot be specified with follow'));
      return;
    }
    let match: FilterFunc;
    try {
      match = requestPredicate(req);
    } catch (err) {
      call.emit('error', err as grpc.ServiceError);
      return;
    }
    const since = req.since ? timestampToNs(req.since as PbTimestamp) : null;
    const until = req.until ? timestampToNs(req.until as PbTimestamp) : null;
    const timeOf = (f: Flow): bigint => timeToNs(f.time);

    // The ring is read and subscribed to in one turn of the event loop: no flow is missed or doubled.
    const held = this.#source.flows.first(Infinity);
    let start = 0;
    if (first && since === null) start = 0;
    else if (follow && number === 0 && since === null) start = held.length;
    else {
      let count = 0;
      for (let i = held.length - 1; i >= 0; i--) {
        const f = held[i] as Flow;
        if (!match(f)) continue;
        if (since !== null && timeOf(f) < since) {
          start = i + 1;
          break;
        }
        count++;
        start = i;
        if (since === null && count === number) break;
      }
    }

    let sent = 0;
    let done = false;
    let lost = 0;
    let unsubscribe: (() => void) | null = null;
    const finish = (): void => {
      if (done) return;
      done = true;
      unsubscribe?.();
      call.end();
    };
    /** Tells the reader how many flows it missed by falling behind, before anything newer. */
    const reportLost = (): void => {
      if (lost === 0 || done) return;
      call.write({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: lost }, node_name: this.#source.nodeName, time: nsToTimestamp(BigInt(Date.now()) * 1_000_000n) });
      lost = 0;
    };
    /** Sends a flow if it passes; false once the stream has ended. */
    const offer = (f: Flow): boolean => {
      if (done) return false;
      if (since !== null || until !== null) {
        const t = timeOf(f);
        if (until !== null && t > until) {
          finish();
          return false;
        }
        if (since !== null && t < since) return true;
      }
      if (!match(f)) return true;
      if (!follow && number > 0 && sent >= number) {
        finish();
        return false;
      }
      if (follow && call.writableLength >= MAX_PENDING_PER_STREAM) {
        lost++;
        return true;
      }
      reportLost();
      const pb = flowToProto(f);
      call.write({ flow: pb, node_name: f.node_name, time: pb.time });
      sent++;
      return true;
    };
    for (let i = start; i < held.length; i++) if (!offer(held[i] as Flow)) return;
    if (!follow) {
      finish();
      return;
    }
    unsubscribe = this.#source.flows.subscribe((f) => {
      offer(f);
    });
    const stop = (): void => {
      done = true;
      unsubscribe?.();
    };
    // A reader that caught up hears of its loss at once, not only with the next flow.
    call.on('drain', reportLost);
    call.on('cancelled', stop);
    call.on('close', stop);
    call.on('error', stop);
  }
}
