/**
 * The agent API: HTTP/1.1 + JSON on a unix socket that only root can open (mode 0600), so
 * nothing that can change policy or read flows is reachable over the network.
 * Handlers map error codes to HTTP statuses; the CLI turns them back into messages.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, mkdirSync, rmSync, writeFileSync, readFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { isMembraneError, membraneError, type ErrorCode } from '../errors/index.js';
import { compileFilters, type Flow, type FilterSet } from '../observe/index.js';
import { formatLabel, loadPolicyText, tracePolicy, type PolicyObject, type TraceInput } from '../policy/index.js';
import { validateEndpointSpec } from './endpoints.js';
import { validateServiceSpec } from './services.js';
import type { Agent } from './agent.js';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  MEMBRANE_ERR_POLICY_INVALID: 400,
  MEMBRANE_ERR_POLICY_NOT_FOUND: 404,
  MEMBRANE_ERR_ENDPOINT_INVALID: 400,
  MEMBRANE_ERR_ENDPOINT_NOT_FOUND: 404,
  MEMBRANE_ERR_CLI_USAGE: 400,
};

const MAX_BODY = 8 * 1024 * 1024;

type Handler = (req: IncomingMessage, url: URL, res: ServerResponse, params: readonly string[]) => Promise<unknown>;

export class ApiServer {
  #agent: Agent;
  #log: Logger;
  #server: Server;
  #path = '';
  #routes: { method: string; pattern: RegExp; handler: Handler }[] = [];

  constructor(agent: Agent, log: Logger) {
    this.#agent = agent;
    this.#log = log;
    this.#server = createServer((req, res) => void this.#dispatch(req, res));
    this.#route('GET', /^\/v1\/healthz$/, async () => ({ ok: true }));
    this.#route('GET', /^\/v1\/status$/, async () => agent.status());
    this.#route('GET', /^\/v1\/config$/, async () => agent.config);
    this.#route('GET', /^\/v1\/endpoints$/, async () => this.#endpointList());
    this.#route('PUT', /^\/v1\/endpoints$/, async (req) => {
      const ep = agent.upsertEndpoint(validateEndpointSpec(JSON.parse(await readBody(req))));
      return this.#endpointList().find((e) => e.id === ep.id);
    });
    this.#route('DELETE', /^\/v1\/endpoints\/([^/]+)\/([^/]+)$/, async (_req, _url, _res, [ns = '', name = '']) => {
      const ep = agent.removeEndpoint(ns, name);
      return { removed: `${ep.namespace}/${ep.name}` };
    });
    this.#route('GET', /^\/v1\/services$/, async () => agent.services.list());
    this.#route('PUT', /^\/v1\/services$/, async (req) => {
      const svc = validateServiceSpec(JSON.parse(await readBody(req)));
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
    this.#route('PUT', /^\/v1\/policy$/, async (req, url) => this.#policyImport(await readBody(req), url));
    this.#route('DELETE', /^\/v1\/policy$/, async (_req, url) => this.#policyDelete(url));
    this.#route('POST', /^\/v1\/policy\/trace$/, async (req) => {
      const input = JSON.parse(await readBody(req)) as Omit<TraceInput, 'policies'>;
      return tracePolicy({ ...input, policies: agent.loadedPolicies(), services: agent.services.list() });
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

  async listen(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    rmSync(path, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    this.#path = path;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#path) rmSync(this.#path, { force: true });
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    let params: string[] = [];
    const route = this.#routes.find((r) => {
      const m = r.method === req.method ? r.pattern.exec(url.pathname) : null;
      if (m) params = m.slice(1).map((p) => decodeURIComponent(p ?? ''));
      return m !== null;
    });
    try {
      if (!route) throw Object.assign(new Error(`no route ${req.method} ${url.pathname}`), { status: 404 });
      const body = await route.handler(req, url, res, params);
      if (res.headersSent) return;
      send(res, 200, body);
    } catch (err) {
      const status = isMembraneError(err) ? (STATUS_BY_CODE[err.code] ?? 500) : ((err as { status?: number }).status ?? (err instanceof SyntaxError ? 400 : 500));
      if (status >= 500) this.#log.error({ err, url: url.pathname }, 'api request failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(res, status, {
        error: {
          code: isMembraneError(err) ? err.code : 'MEMBRANE_ERR_AGENT_API',
          message: (err as Error).message,
          ...(isMembraneError(err) && err.details ? { details: err.details } : {}),
        },
      });
    }
  }

  #endpointList() {
    return this.#agent.endpoints.list().map((ep) => ({
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
    }));
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
    writeFileSync(`${target}.tmp`, text);
    renameSync(`${target}.tmp`, target);
    this.#agent.policies.refresh([...replaced.files, target]);
    const regeneration = this.#agent.regenerateNow();
    return { file: target, policies: result.policies.map((p) => p.name), revision: regeneration.revision };
  }

  /** `policy delete NAME|--all`: removes the files that define it from the watched directory. */
  #policyDelete(url: URL) {
    const all = url.searchParams.get('all') === '1';
    const name = url.searchParams.get('name');
    if (!all && !name) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'give a policy name or --all');
    const { names: removed, files } = this.#removePolicies((p) => all || p.name === name);
    if (!removed.length) throw membraneError('MEMBRANE_ERR_POLICY_NOT_FOUND', name ?? '');
    this.#agent.policies.refresh(files);
    const regeneration = this.#agent.regenerateNow();
    return { removed, revision: regeneration.revision };
  }

  /**
   * Removes the policies `match` picks from the watched directory (skipping `except`): a file
   * holding only such policies goes, a file holding others too keeps those documents.
   */
  #removePolicies(match: (p: PolicyObject) => boolean, except?: string): { names: string[]; files: string[] } {
    const names: string[] = [];
    const files: string[] = [];
    for (const [file, state] of this.#agent.policies.files()) {
      const hit = state.policies.filter(match);
      if (file === except || hit.length === 0) continue;
      if (hit.length === state.policies.length) {
        rmSync(file, { force: true });
      } else {
        const kept = readFileSync(file, 'utf8')
          .split(/^---\s*$/m)
          .filter((doc) => !loadPolicyText(doc, file).policies.some(match));
        writeFileSync(file, kept.join('---\n'));
      }
      names.push(...hit.map((p) => p.name));
      files.push(file);
    }
    return { names, files };
  }

  async #flows(req: IncomingMessage, url: URL, res: ServerResponse): Promise<unknown> {
    const last = Number(url.searchParams.get('last') ?? '20');
    const filterText = url.searchParams.get('filters');
    const filters: FilterSet = filterText ? (JSON.parse(filterText) as FilterSet) : { allow: [], deny: [] };
    const predicate = compileFilters(filters);
    const recent = this.#agent.flows.last(Number.isFinite(last) && last > 0 ? last : 20, predicate);
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

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body ?? null);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error(`request body over ${MAX_BODY} bytes`), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
