/** The CLI's client for the agent API (HTTP over the agent's unix socket). */
import { Client } from 'undici';
import { errorFromWire, membraneError } from '../errors/index.js';

export const DEFAULT_API_SOCKET = process.env.MEMBRANE_API_SOCKET ?? '/run/membrane/agent.sock';

/** Errors of a write into a connection the peer already closed. */
const STALE_CONNECTION = new Set(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export class AgentClient {
  #client: Client;
  readonly socketPath: string;

  constructor(socketPath = DEFAULT_API_SOCKET) {
    this.socketPath = socketPath;
    // An idle connection is dropped by the client well before the agent's 5 s idle limit, so a
    // call after a pause never writes into a socket the agent is closing (EPIPE).
    this.#client = new Client('http://agent', { socketPath, connect: { timeout: 2000 }, keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000 });
  }

  /**
   * One API call. Bodies: an object goes as JSON, a string as text (a policy file).
   * Errors: the agent's own error comes back with its original `MEMBRANE_ERR_*` code, message
   * and details (plus `status`, the HTTP status); a socket that does not answer is
   * MEMBRANE_ERR_AGENT_UNREACHABLE.
   */
  async request<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: string | object): Promise<T> {
    const options = {
      method,
      path,
      ...(body === undefined
        ? {}
        : typeof body === 'string'
          ? { body, headers: { 'content-type': 'text/plain; charset=utf-8' } }
          : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      headersTimeout: 60_000,
    };
    let res;
    try {
      try {
        res = await this.#client.request(options);
      } catch (err) {
        // A kept-alive connection the agent closed while this process could not notice (its
        // event loop busy past the idle limit) fails on first write; an idempotent call is
        // sent again once, on a new connection, as browsers do. POST is never repeated.
        if (method === 'POST' || !STALE_CONNECTION.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        res = await this.#client.request(options);
      }
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_AGENT_UNREACHABLE', unreachableMessage(this.socketPath, err), {
        cause: err,
      });
    }
    const text = await res.body.text();
    let parsed: unknown = null;
    try {
      parsed = text ? (JSON.parse(text) as unknown) : null;
    } catch {
      if (res.statusCode < 400) throw membraneError('MEMBRANE_ERR_AGENT_API', `${method} ${path}: the answer is not JSON`, { details: { status: res.statusCode } });
    }
    if (res.statusCode >= 400) {
      const wire = (parsed as { error?: unknown } | null)?.error ?? { message: `HTTP ${res.statusCode}${text ? `: ${text.slice(0, 200)}` : ''}` };
      throw errorFromWire(wire, { status: res.statusCode });
    }
    return parsed as T;
  }

  /** Streams newline-delimited JSON until the connection ends or `signal` aborts. */
  async stream(path: string, onItem: (item: unknown) => void, signal?: AbortSignal): Promise<void> {
    let res;
    try {
      res = await this.#client.request({ method: 'GET', path, ...(signal ? { signal } : {}) });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw membraneError('MEMBRANE_ERR_AGENT_UNREACHABLE', unreachableMessage(this.socketPath, err), {
        cause: err,
      });
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      let wire: unknown = { message: `HTTP ${res.statusCode}` };
      try {
        wire = (JSON.parse(text) as { error?: unknown }).error ?? wire;
      } catch {
        /* not JSON: the status says enough */
      }
      throw errorFromWire(wire, { status: res.statusCode });
    }
    let buf = '';
    for await (const chunk of res.body) {
      buf += (chunk as Buffer).toString('utf8');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) onItem(JSON.parse(line));
      }
    }
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}

export async function withAgent<T>(socket: string | undefined, fn: (c: AgentClient) => Promise<T>): Promise<T> {
  const client = new AgentClient(socket);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Why the agent's socket could not be used: a root-only socket is not "the agent is down". */
function unreachableMessage(socketPath: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EACCES' || e.code === 'EPERM') return `${socketPath}: permission denied (${e.code}; the agent's API socket is root-only: run the command as root)`;
  return `${socketPath}: ${e.message} (is \`membrane agent\` running?)`;
}
