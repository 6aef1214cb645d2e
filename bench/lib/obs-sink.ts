/**
 * The HTTP benchmark's observability peer, run as its own process in the node network namespace
 * (`node obs-sink.js <listen-port> <metrics-url>`; loopback only):
 *
 *   POST /v1/traces   an OTLP/HTTP collector that keeps nothing: 200 with an empty
 *                     ExportTraceServiceResponse (an empty protobuf message is zero bytes),
 *                     requests and body bytes counted
 *   POST /scrape?every=MS   scrape `metrics-url` every MS ms with a plain GET (keep-alive, as
 *                     Prometheus does); every=0 stops
 *   GET /stats        {"traces":{"requests","bytes"},"scrapes":{"ok","failed","bytes"}} as JSON
 *
 * Bodies are read and dropped as they arrive: nothing is buffered, so no bound is needed.
 */
import { Agent, createServer, get, type Server } from 'node:http';
import { pathToFileURL } from 'node:url';

/** The counters `GET /stats` answers with. */
export interface SinkStats {
  readonly traces: { readonly requests: number; readonly bytes: number };
  readonly scrapes: { readonly ok: number; readonly failed: number; readonly bytes: number };
}

/**
 * Starts the sink on 127.0.0.1:`port` (0: any free port); scrapes `metricsUrl` when told to.
 * Closing the server stops the scraping too.
 */
export function startSink(port: number, metricsUrl: string): Server {
  const traces = { requests: 0, bytes: 0 };
  const scrapes = { ok: 0, failed: 0, bytes: 0 };
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let timer: NodeJS.Timeout | null = null;

  const scrape = (): void => {
    const req = get(metricsUrl, { agent, timeout: 5000 }, (res) => {
      let n = 0;
      res.on('data', (b: Buffer) => (n += b.length));
      res.on('end', () => {
        if (res.statusCode === 200) {
          scrapes.ok++;
          scrapes.bytes += n;
        } else scrapes.failed++;
      });
      res.on('error', () => scrapes.failed++);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => scrapes.failed++);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sink');
    if (req.method === 'POST' && url.pathname === '/v1/traces') {
      traces.requests++;
      req.on('data', (b: Buffer) => (traces.bytes += b.length));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end());
      return;
    }
    req.resume();
    if (req.method === 'POST' && url.pathname === '/scrape') {
      const every = Number(url.searchParams.get('every') ?? '0');
      if (timer) clearInterval(timer);
      timer = every > 0 ? setInterval(scrape, every) : null;
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/stats') {
      const stats: SinkStats = { traces, scrapes };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    res.writeHead(404).end();
  });
  server.on('close', () => {
    if (timer) clearInterval(timer);
    agent.destroy();
  });
  return server.listen(port, '127.0.0.1');
}

function main(): void {
  const port = Number(process.argv[2]);
  const metricsUrl = process.argv[3] ?? '';
  if (!Number.isInteger(port) || port <= 0 || !metricsUrl) {
    process.stderr.write('usage: obs-sink.js <listen-port> <metrics-url>\n');
    process.exit(2);
  }
  startSink(port, metricsUrl);
}

// Run as a program (the benchmark's child process), not when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
