/** The CLI's client for the agent API (HTTP over the agent's unix socket). */
import { Client } from 'undici';
import { membraneError } from '../errors/index.js';

export const DEFAULT_API_SOCKET = process.env.MEMBRANE_API_SOCKET ?? '/run/membrane/agent.sock';

export class AgentClient {
  #client: Client;
  readonly socketPath: string;

  constructor(socketPath = DEFAULT_API_SOCKET) {
    this.socketPath = socketPath;
    this.#client = new Client('http://agent', { socketPath, connect: { timeout: 2000 } });
  }

  async request<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: string | object): Promise<T> {
    let res;
    try {
      res = await this.#client.request({
        method,
        path,
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        headersTimeout: 60_000,
      });
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_AGENT_UNREACHABLE', `${this.socketPath}: ${(err as Error).message} (is \`membrane agent\` running?)`, {
        cause: err,
      });
    }
    const text = await res.body.text();
    const parsed = text ? (JSON.parse(text) as unknown) : null;
    if (res.statusCode >= 400) {
      const e = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })?.error;
      const err = membraneError('MEMBRANE_ERR_AGENT_API', e?.message ?? `HTTP ${res.statusCode}`, {
        details: { status: res.statusCode, code: e?.code, ...(e?.details ?? {}) },
      });
      throw err;
    }
    return parsed as T;
  }

  /** Streams newline-delimited JSON until the connection ends or `signal` aborts. */
  async stream(path: string, onItem: (item: unknown) => void, signal?: AbortSignal): Promise<void> {
    const res = await this.#client.request({ method: 'GET', path, ...(signal ? { signal } : {}) });
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
