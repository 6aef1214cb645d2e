/**
 * The opt-in Prometheus listener: `--prometheus-serve-addr IP:Port` as Cilium's agent takes it
 * (an empty IP, `:9962`, binds every interface; Cilium's agent metrics port is 9962). Serves
 * `GET /metrics` in the text exposition format; anything else is 404, another method 405.
 */
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { membraneError } from '../errors/index.js';

/** Cilium's default agent metrics port (`prometheus.port`, `--prometheus-serve-addr=:9962`). */
export const DEFAULT_PROMETHEUS_PORT = 9962;

export interface ServeAddr {
  /** Empty: every interface. */
  readonly host: string;
  readonly port: number;
}

/**
 * `IP:Port`, `[IPv6]:Port` or `:Port` → host and port.
 * @throws MEMBRANE_ERR_CLI_USAGE naming the flag, for anything else.
 */
export function parseServeAddr(text: string, flag = '--prometheus-serve-addr'): ServeAddr {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2] ?? '';
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535 || (host !== '' && isIP(host) === 0)) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${flag} ${JSON.stringify(text)}: expected IP:Port (e.g. 127.0.0.1:${DEFAULT_PROMETHEUS_PORT}, or :${DEFAULT_PROMETHEUS_PORT} for every interface)`);
  }
  return { host, port };
}

export interface MetricsEndpoint {
  readonly contentType: string;
  scrape(): Promise<string>;
}

export class MetricsServer {
  readonly #server: Server;
  readonly #log: Logger | undefined;

  constructor(metrics: MetricsEndpoint, log?: Logger) {
    this.#log = log;
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are served at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
        return;
      }
      metrics.scrape().then(
        (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          this.#log?.error({ err }, 'metrics scrape failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
        },
      );
    });
    // A scrape is one short request; a slow or idle client must not hold sockets open.
    this.#server.requestTimeout = 10_000;
    this.#server.headersTimeout = 5_000;
    this.#server.keepAliveTimeout = 5_000;
    this.#server.maxConnections = 64;
  }

  /** @throws MEMBRANE_ERR_METRICS_LISTEN with the address and the OS error. */
  async listen(addr: ServeAddr): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(membraneError('MEMBRANE_ERR_METRICS_LISTEN', `${addr.host || '*'}:${addr.port}: ${err.message}`, { cause: err, details: { host: addr.host, port: addr.port } }));
      this.#server.once('error', onError);
      this.#server.listen(addr.port, addr.host || undefined, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    const a = this.#server.address();
    return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: addr.host, port: addr.port };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
