/**
 * The agent API: HTTP/1.1 + JSON on a unix socket that only root can open (mode 0600), so
 * nothing that can change policy or read flows is reachable over the network.
 * Handlers map error codes to HTTP statuses and send the error itself (`{error: {code, message,
 * details}}`), which the CLI rebuilds with the same code. Any request, however malformed (bad
 * escapes, bad JSON, oversized or slow bodies, unknown routes, wrong methods or content types),
 * gets a 4xx and never takes the agent down.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isIPv4 } from 'node:net';
import { chmodSync, mkdirSync, rmSync, writeFileSync, readFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { parseAllDocuments } from 'yaml';
import { errorToWire, isMembraneError, membraneError, type ErrorCode, type MembraneError } from '../errors/index.js';
import type { Flow } from '../observe/index.js';
import { bindingPath, claimSocketPath, publishSocket, removeOwnSocket, type SocketFileId } from '../hubble/index.js';
import { formatLabel, loadPolicyText, NAMED_PORT_PROTOCOL, tracePolicy, type PolicyObject, type TraceInput } from '../policy/index.js';
import { validateEndpointSpec, type Endpoint } from './endpoints.js';
import { visibilityStatus } from './visibility.js';
import { LOCAL_IDENTITY_SCOPE } from './identity-allocator.js';
import { validateServiceSpec } from './services.js';
import type { Agent } from './agent.js';
import { POLICY_TYPES, checkContentType, decodeParam, flowFilter, positiveIntParam, readBody, readJson, requestUrl, traceBody } from './api-input.js';

/** A policy taken out of the watched directory: its file, and whether the file went with it. */
interface RemovedPolicy {
  readonly kind: string;
  readonly namespace: string | null;
  readonly name: string;
  readonly file: string;
  /** True when the file held only removed policies and was deleted. */
  readonly fileRemoved: boolean;
}

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  MEMBRANE_ERR_POLICY_INVALID: 400,
  MEMBRANE_ERR_POLICY_NOT_FOUND: 404,
  MEMBRANE_ERR_ENDPOINT_INVALID: 400,
  MEMBRANE_ERR_ENDPOINT_NOT_FOUND: 404,
  MEMBRANE_ERR_CLI_USAGE: 400,
  MEMBRANE_ERR_OBSERVE_FILTER: 400,
  MEMBRANE_ERR_API_REQUEST: 400,
  MEMBRANE_ERR_API_ROUTE: 404,
  MEMBRANE_ERR_API_METHOD: 405,
  MEMBRANE_ERR_API_TIMEOUT: 408,
  MEMBRANE_ERR_API_TOO_LARGE: 413,
  MEMBRANE_ERR_API_MEDIA_TYPE: 415,
};

/** HTTP status of an error the API sends: by its registry code; anything else is the agent's fault (500). */
export function apiStatus(err: MembraneError): number {
  return STATUS_BY_CODE[err.code] ?? 500;
}

/**
 * Slow clients (slowloris): headers must arrive within HEADERS_TIMEOUT_MS and the whole request
 * within REQUEST_TIMEOUT_MS, or the server answers 408 and closes; the CLI sends both at once.
 */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;

type Handler = (req: IncomingMessage, url: URL, res: ServerResponse, params: readonly string[]) => Promise<unknown>;

export class ApiServer {
  #agent: Agent;
  #log: Logger;
  #server: Server;
  #socketFile: SocketFileId | null = null;
  #routes: { method: string; pattern: RegExp; handler: Handler }[] = [];

  constructor(agent: Agent, log: Logger) {
    this.#agent = agent;
    this.#log = log;
    this.#server = createServer(
      { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000 },
      (req, res) => {
        // #dispatch answers every error itself; this catch is only for a fault in that answer.
        this.#dispatch(req, res).catch((err: unknown) => {
          this.#log.error({ err }, 'api request failed while answering');
          res.destroy();
        });
      },
    );
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(err, socket));
    this.#route('GET', /^\/v1\/healthz$/, async () => ({ ok: true }));
    this.#route('GET', /^\/v1\/status$/, async () => agent.status());
    this.#route('GET', /^\/v1\/config$/, async () => agent.config);
    // A worker ended as a crash would (tests, or a wedged worker): the agent starts it again.
    this.#route('POST', /^\/v1\/proxy-workers\/(\d{1,3})\/kill$/, async (_req, _url, _res, [index = '']) => agent.killProxyWorker(Number(index)));
    this.#route('GET', /^\/v1\/endpoints$/, async () => this.#endpointList());
    this.#route('PUT', /^\/v1\/endpoints$/, async (req) => {
      const ep = await agent.upsertEndpoint(validateEndpointSpec(await readJson(req)));
      return this.#endpointView(ep);
    });
    this.#route('DELETE', /^\/v1\/endpoints\/([^/]+)\/([^/]+)$/, async (_req, _url, _res, [ns = '', name = '']) => {
      const ep = await agent.removeEndpoint(ns, name);
      return { removed: `${ep.namespace}/${ep.name}` };
    });
    this.#route('GET', /^\/v1\/services$/, async () => agent.services.list());
    this.#route('PUT', /^\/v1\/services$/, async (req) => {
      const svc = validateServiceSpec(await readJson(req));
      agent.upsertService(svc);
      return svc;
    });
    this.#route('DELETE', /^\/v1\/services\/([^/]+)\/([^/]+)$/, async (_req, _url, _res, [ns = '', name = '']) => {
      agent.removeService(ns, name);
      return { removed: `${ns}/${name}` };
    });
    this.#route('GET', /^\/v1\/identities$/, async () =>
      agent.regenerator.identities().map((i) => ({ id: i.id, labels: i.labels.map(formatLabel) })),
    );
    this.#route('GET', /^\/v1\/policy$/, async () => this.#policyGet());
    this.#route('PUT', /^\/v1\/policy$/, async (req, url) => {
      checkContentType(req, POLICY_TYPES);
      return this.#policyImport(await readBody(req), url);
    });
    this.#route('DELETE', /^\/v1\/policy$/, async (_req, url) => this.#policyDelete(url));
    this.#route('POST', /^\/v1\/policy\/trace$/, async (req) => {
      const body = traceBody(await readJson(req)) as unknown as Omit<TraceInput, 'policies'>;
      try {
        // A pod's address is that pod: traced with its labels, namespace and named ports (its own
        // policy judges it), as its packets are.
        const pods: string[] = [];
        const endpointIdentity: { src?: number; dst?: number } = {};
        const asPod = (which: 'src' | 'dst', ip: string | undefined): Partial<TraceInput> => {
          const ep = ip !== undefined && isIPv4(ip) ? agent.endpoints.byIp(ip) : undefined;
          const given = body[which];
          // Labels and an address together stay contradictory input (the trace refuses them).
          if (!ep || (given && (Object.keys(given.labels ?? {}).length > 0 || given.entity !== undefined))) return {};
          pods.push(`  ${ip} is the address of endpoint ${ep.namespace}/${ep.name}`);
          const namedPorts = Object.fromEntries(Object.entries(ep.namedPorts ?? {}).map(([n, p]) => [n, { port: p.port, protocol: NAMED_PORT_PROTOCOL[p.protocol] ?? 'TCP' }]));
          endpointIdentity[which] = ep.identity;
          return {
            [`${which}Cidr`]: undefined,
            [which]: { labels: ep.podLabels, namespace: ep.namespace, ...(ep.namespaceLabels ? { namespaceLabels: ep.namespaceLabels } : {}), namedPorts },
          };
        };
        const input = { ...body, ...asPod('src', body.srcCidr), ...asPod('dst', body.dstCidr) } as Omit<TraceInput, 'policies'>;
        if (input.srcCidr === undefined) delete input.srcCidr;
        if (input.dstCidr === undefined) delete input.dstCidr;
        // An address is traced as what it is in the ipcache now: the identity (and labels) the
        // datapath judges it by — learned through DNS, a policy prefix's, or reserved:world.
        const learned = input.dstCidr !== undefined && input.dstFqdn === undefined ? agent.fqdnNamesOf(input.dstCidr) : [];
        // Only an address outside the cluster (pods were resolved above); any other identity, the
        // node's for one, keeps the offline CIDR labels.
        const held = (ip: string | undefined) => {
          if (ip === undefined || !isIPv4(ip)) return undefined;
          const id = agent.regenerator.identity(agent.regenerator.identityOfIp(ip));
          return id && (id.id >= LOCAL_IDENTITY_SCOPE || id.labels.every((l) => l.source === 'reserved' && l.key.startsWith('world'))) ? id : undefined;
        };
        const src = held(input.srcCidr);
        const dst = held(input.dstCidr);
        const result = tracePolicy({
          ...input,
          ...(learned.length && !dst ? { dstFqdn: learned } : {}),
          cidrIdentity: { ...(src ? { src } : {}), ...(dst ? { dst } : {}) },
          endpointIdentity,
          normalizePath: agent.config.httpNormalizePath,
          policies: agent.loadedPolicies(),
          services: agent.services.list(),
        });
        if (input.dstCidr !== undefined && input.dstFqdn === undefined) {
          result.lines.splice(1, 0, learned.length ? `  ${input.dstCidr} was learned from DNS answers for ${learned.join(', ')}` : `  ${input.dstCidr} was not learned from any DNS answer`);
        }
        result.lines.splice(1, 0, ...pods);
        return result;
      } catch (err) {
        // Contradictory labels, an unknown label source, a bad address: the request's fault (400).
        if (err instanceof RangeError) throw membraneError('MEMBRANE_ERR_API_REQUEST', err.message);
        throw err;
      }
    });
    this.#route('GET', /^\/v1\/fqdn\/cache$/, async (_req, url) => {
      const endpoint = url.searchParams.get('endpoint');
      const name = url.searchParams.get('name');
      if (endpoint !== null && !/^[0-9]{1,9}$/.test(endpoint)) throw membraneError('MEMBRANE_ERR_API_REQUEST', `endpoint ${JSON.stringify(endpoint)} is not an endpoint id`);
      return agent.fqdnCache({ ...(endpoint !== null ? { endpointId: Number(endpoint) } : {}), ...(name !== null ? { name } : {}) });
    });
    this.#route('GET', /^\/v1\/flows$/, async (req, url, res) => this.#flows(req, url, res));
    this.#route('GET', /^\/v1\/datapath$/, async () => ({
      ipcache: Object.fromEntries(agent.datapath.dumpIpcache()),
      endpoints: Object.fromEntries(agent.datapath.dumpEndpoints()),
      policy: agent.datapath.dumpPolicy(),
      conntrack: agent.datapath.dumpConntrack().map((c) => ({ ...c, packets: Number(c.packets) })),
    }));
  }

  #route(method: string, pattern: RegExp, handler: Handler): void {
    this.#routes.push({ method, pattern, handler });
  }

  /**
   * Serves the API on the unix socket `path` (mode 0600). Errors: MEMBRANE_ERR_API_LISTEN naming
   * the path when another process answers on it (a second agent), it is not a socket, or it
   * cannot be bound; a dead socket file left by a crash is replaced.
   */
  async listen(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    await claimSocketPath(path, 'MEMBRANE_ERR_API_LISTEN');
    const bound = bindingPath(path);
    rmSync(bound, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err) => reject(membraneError('MEMBRANE_ERR_API_LISTEN', `${path}: ${err.message}`, { cause: err })));
      this.#server.listen(bound, () => resolve());
    });
    chmodSync(bound, 0o600);
    this.#socketFile = publishSocket(path, 'MEMBRANE_ERR_API_LISTEN');
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    // Only the socket this agent bound: a second agent's socket at the same path stays.
    removeOwnSocket(this.#socketFile);
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = req.url ?? '';
    try {
      const url = requestUrl(req.url);
      path = url.pathname;
      const { handler, params } = this.#match(req.method ?? '', url.pathname);
      const body = await handler(req, url, res, params);
      if (res.headersSent) return;
      send(res, 200, body);
    } catch (err) {
      await this.#fail(req, res, err, path);
    }
  }

  /** The route for a method and path: 404 when no route has the path, 405 (with Allow) when another method does. */
  #match(method: string, pathname: string): { handler: Handler; params: string[] } {
    const allowed: string[] = [];
    for (const r of this.#routes) {
      const m = r.pattern.exec(pathname);
      if (!m) continue;
      if (r.method === method) return { handler: r.handler, params: m.slice(1).map((p) => decodeParam(p ?? '')) };
      allowed.push(r.method);
    }
    if (allowed.length) throw membraneError('MEMBRANE_ERR_API_METHOD', `${method} ${pathname}; allowed: ${allowed.join(', ')}`, { details: { allow: allowed } });
    throw membraneError('MEMBRANE_ERR_API_ROUTE', `${method} ${pathname}`);
  }

  /** Answers an error with its code; only a fault of the agent itself (500) is logged as an error. */
  async #fail(req: IncomingMessage, res: ServerResponse, err: unknown, path: string): Promise<void> {
    const e = isMembraneError(err) ? err : membraneError('MEMBRANE_ERR_AGENT_API', (err as Error)?.message ?? String(err), { cause: err });
    const status = apiStatus(e);
    if (status >= 500) this.#log.error({ err, method: req.method, url: path }, 'api request failed');
    else this.#log.debug({ code: e.code, method: req.method, url: path, status }, 'api request rejected');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const allow = e.details?.allow;
    if (Array.isArray(allow)) res.setHeader('allow', allow.join(', '));
    await drainRefusedBody(req);
    send(res, status, { error: errorToWire(e) });
  }

  /**
   * Requests Node's parser refuses before a handler sees them (bad HTTP syntax, headers over
   * 16 KiB, a client too slow to send its request) still get a status and a coded JSON error.
   */
  #clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const answered = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (err.code === 'ECONNRESET' || !socket.writable || answered) {
      socket.destroy();
      return;
    }
    const [status, reason, code]: [number, string, ErrorCode] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'MEMBRANE_ERR_API_TOO_LARGE']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'MEMBRANE_ERR_API_TIMEOUT']
          : [400, 'Bad Request', 'MEMBRANE_ERR_API_REQUEST'];
    this.#log.debug({ code: err.code, status }, 'api client error');
    const body = JSON.stringify({ error: errorToWire(membraneError(code, err.code ?? err.message)) });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  #endpointList() {
    return this.#agent.endpoints.list().map((ep) => this.#endpointView(ep));
  }

  /** One endpoint as `GET /v1/endpoints` lists it. */
  #endpointView(ep: Endpoint) {
    return {
      id: ep.id,
      name: ep.name,
      namespace: ep.namespace,
      identity: ep.identity,
      labels: ep.labels.map(formatLabel).sort(),
      ipv4: ep.ip,
      ifname: ep.ifname,
      netns: ep.netns ?? null,
      ingressEnforcement: ep.policy?.ingress.enforced ?? false,
      egressEnforcement: ep.policy?.egress.enforced ?? false,
      status: ep.state,
      ...(ep.lastError ? { error: ep.lastError } : {}),
      ...(visibilityStatus(ep) ? { visibilityPolicy: visibilityStatus(ep) } : {}),
    };
  }

  #policyGet() {
    const files = [...this.#agent.policies.files()].map(([file, state]) => ({
      file,
      policies: state.policies.map((p) => ({ kind: p.kind, name: p.name, namespace: p.namespace ?? null })),
      problems: state.problems,
    }));
    return { revision: this.#agent.policies.revision, files };
  }

  /**
   * `policy import`: validated here first, so a bad file is refused with its problems and
   * never reaches the watched directory; a good one is written there and enforced before
   * the call returns.
   */
  #policyImport(text: string, url: URL) {
    const requested = url.searchParams.get('file') ?? 'policy.yaml';
    const name = basename(requested);
    if (!/^[A-Za-z0-9_.-]+\.(ya?ml|json)$/.test(name)) {
      throw membraneError('MEMBRANE_ERR_POLICY_INVALID', `file name ${requested} must end in .yaml, .yml or .json`);
    }
    const target = join(this.#agent.policies.dir, name);
    const result = loadPolicyText(text, requested);
    if (result.problems.length) {
      throw membraneError('MEMBRANE_ERR_POLICY_INVALID', `${requested} has ${result.problems.length} problem(s)`, {
        details: { problems: result.problems },
      });
    }
    // Like `kubectl apply`: a policy of the same kind, namespace and name in another file is
    // replaced, not duplicated.
    const replaced = this.#removePolicies(
      (p) => result.policies.some((q) => q.kind === p.kind && q.namespace === p.namespace && q.name === p.name),
      target,
    );
    // A file of the same name is overwritten whole: its policies the new text lacks are gone too.
    const overwritten = (this.#agent.policies.files().get(target)?.policies ?? [])
      .filter((p) => !result.policies.some((q) => q.kind === p.kind && q.namespace === p.namespace && q.name === p.name))
      .map((p) => ({ kind: p.kind, namespace: p.namespace ?? null, name: p.name, file: target, fileRemoved: false }));
    writeAtomic(target, text);
    this.#agent.policies.refresh([...replaced.files, target]);
    this.#agent.regenerateNow();
    // The policy revision (what `policy get` shows), read after the files are taken in and
    // enforced: the watcher's later report of the same files changes nothing. `replaced` names
    // each policy another file held under an imported name, and `dropped` those the overwritten
    // file held that the new text does not, so nothing disappears unsaid.
    return {
      file: target,
      policies: result.policies.map((p) => p.name),
      revision: this.#agent.policies.revision,
      replaced: replaced.entries,
      dropped: overwritten,
    };
  }

  /**
   * `policy delete NAME|--all`: removes the documents that define it from the watched directory.
   * `--all` with nothing loaded deletes nothing and succeeds (as `cilium policy delete --all`);
   * a NAME that is not loaded is MEMBRANE_ERR_POLICY_NOT_FOUND.
   */
  #policyDelete(url: URL) {
    const all = url.searchParams.get('all') === '1';
    const name = url.searchParams.get('name');
    if (!all && !name) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'give a policy name or --all');
    const { names: removed, files } = this.#removePolicies((p) => all || p.name === name);
    if (!removed.length && !all) throw membraneError('MEMBRANE_ERR_POLICY_NOT_FOUND', name ?? '');
    if (files.length) {
      this.#agent.policies.refresh(files);
      this.#agent.regenerateNow();
    }
    return { removed, revision: this.#agent.policies.revision };
  }

  /**
   * Removes the policies `match` picks from the watched directory (skipping `except`): a file
   * holding only such policies goes, a file holding others too keeps those documents.
   */
  #removePolicies(match: (p: PolicyObject) => boolean, except?: string): { names: string[]; files: string[]; entries: RemovedPolicy[] } {
    const names: string[] = [];
    const files: string[] = [];
    const entries: RemovedPolicy[] = [];
    for (const [file, state] of this.#agent.policies.files()) {
      const hit = state.policies.filter(match);
      if (file === except || hit.length === 0) continue;
      try {
        if (hit.length === state.policies.length) rmSync(file, { force: true });
        else writeAtomic(file, keepDocuments(readFileSync(file, 'utf8'), (doc) => !loadPolicyText(doc, file).policies.some(match)));
      } catch (err) {
        throw membraneError('MEMBRANE_ERR_POLICY_IO', `${file}: ${(err as Error).message}`, { cause: err });
      }
      names.push(...hit.map((p) => p.name));
      files.push(file);
      const fileRemoved = hit.length === state.policies.length;
      entries.push(...hit.map((p) => ({ kind: p.kind, namespace: p.namespace ?? null, name: p.name, file, fileRemoved })));
    }
    return { names, files, entries };
  }

  async #flows(req: IncomingMessage, url: URL, res: ServerResponse): Promise<unknown> {
    const last = positiveIntParam(url, 'last', 20, 1_000_000);
    const predicate = flowFilter(url.searchParams.get('filters'));
    const recent = this.#agent.flows.last(last, predicate);
    if (url.searchParams.get('follow') !== '1') return recent;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (const f of recent) res.write(`${JSON.stringify(f)}\n`);
    const unsubscribe = this.#agent.flows.subscribe((f: Flow) => {
      if (predicate(f)) res.write(`${JSON.stringify(f)}\n`);
    });
    await new Promise<void>((resolve) => req.socket.once('close', () => resolve()));
    unsubscribe();
    return undefined;
  }
}

const LINGER_BYTES = 16 * 1024 * 1024;
const LINGER_MS = 2_000;

/**
 * Reads and discards what is left of a refused request body (at most 16 MiB or 2 s) before the
 * answer goes out. Closing a socket with unread data resets it, and a client still writing its
 * body (`connection: close`, or Node's server ending the exchange) then loses the answer with
 * the connection: the 413 arrives as a bare EPIPE.
 */
function drainRefusedBody(req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = (): void => {
      clearTimeout(timer);
      req.off('data', count);
      req.off('end', done);
      req.off('close', done);
      req.off('error', done);
      resolve();
    };
    const count = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > LINGER_BYTES) done();
    };
    const timer = setTimeout(done, LINGER_MS);
    req.on('data', count);
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body ?? null);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Writes a file in the watched directory in one step (temp file + rename), so the watcher never reads half of it. */
function writeAtomic(path: string, text: string): void {
  try {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  } catch (err) {
    rmSync(`${path}.tmp`, { force: true });
    throw membraneError('MEMBRANE_ERR_POLICY_IO', `${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The documents of a multi-document YAML text that `keep` accepts, each exactly as written
 * (comments included; a document runs from its `---` to the next one, the first from the top).
 */
export function keepDocuments(text: string, keep: (doc: string) => boolean): string {
  const starts = parseAllDocuments(text).map((d, i) => (i === 0 ? 0 : (d.range?.[0] ?? 0)));
  const docs = starts.map((start, i) => text.slice(start, starts[i + 1] ?? text.length));
  return docs.filter(keep).join('');
}
