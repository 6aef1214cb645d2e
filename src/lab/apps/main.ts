/**
 * Servers that lab pods run: `starwars` (the deathstar API of the Cilium demo), `door-manager`
 * (the gRPC door service of Cilium's gRPC guide), `websocket-echo`, `echo`
 * (answers every HTTP request with who asked; also TCP/UDP echo for probes) and `world` (the
 * public sites of the lab's world namespace, world.ts; `--config FILE` gives them).
 * Each request is logged as one JSON line on stdout, so tests can see what reached the pod.
 */
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { serveWorld, type WorldConfig } from './world.js';
import { serveDoorManager } from './door-manager.js';
import { serveWebSocketEcho } from './websocket-echo.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { port: { type: 'string', multiple: true }, name: { type: 'string', default: 'pod' }, config: { type: 'string' } },
});
const app = positionals[0] ?? 'echo';
const ports = (values.port ?? ['80']).map(Number);
const name = values.name ?? 'pod';

function log(entry: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), pod: name, ...entry })}\n`);
}

if (app === 'door-manager') {
  serveDoorManager(ports[0] ?? 50051, log).catch((err: Error) => {
    log({ error: err.message });
    process.exit(1);
  });
} else if (app === 'websocket-echo') {
  void serveWebSocketEcho(ports[0] ?? 80, name, log);
} else if (app === 'world') {
  serveWorld(JSON.parse(readFileSync(values.config ?? '', 'utf8')) as WorldConfig, log);
} else if (app === 'starwars') {
  const server = createServer((req, res) => {
    // The traceparent it received: tests check the proxy's span is the parent.
    const traceparent = req.headers.traceparent;
    log({ method: req.method, path: req.url, from: req.socket.remoteAddress, ...(traceparent ? { traceparent } : {}) });
    req.resume();
    if (req.method === 'POST' && req.url === '/v1/request-landing') {
      res.end('Ship landed\n');
    } else if (req.method === 'PUT' && req.url === '/v1/exhaust-port') {
      res.statusCode = 503;
      res.end('Panic: deathstar exploded\n\ngoroutine 1 [running]:\nmain.HandleGarbage(0x2080c3f50, 0x2, 0x4, 0x425c0, 0x5, 0xa)\n');
    } else if (req.method === 'GET' && req.url === '/v1') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name: 'Death Star', model: 'DS-1 Orbital Battle Station' }, null, 2) + '\n');
    } else {
      res.statusCode = 404;
      res.end('Not found\n');
    }
  });
  server.listen(ports[0] ?? 80, '0.0.0.0');
} else {
  for (const port of ports) {
    const http = port === 80 || port === 8080;
    if (http) {
      createServer((req, res) => {
        log({ method: req.method, path: req.url, from: req.socket.remoteAddress });
        req.resume();
        res.end(`${name} ${req.method} ${req.url}\n`);
      }).listen(port, '0.0.0.0');
    } else {
      createTcpServer((sock) => {
        log({ tcp: port, from: sock.remoteAddress });
        sock.end(`${name}\n`);
        sock.on('error', () => undefined);
      }).listen(port, '0.0.0.0');
    }
    const udp = createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      log({ udp: port, from: rinfo.address });
      udp.send(`${name}\n`, rinfo.port, rinfo.address);
    });
    udp.bind(port, '0.0.0.0');
  }
}

process.on('SIGTERM', () => process.exit(0));
