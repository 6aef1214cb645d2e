/**
 * `app: websocket-echo`: a WebSocket server (the `ws` package) that sends every message back,
 * on any path; a plain HTTP request gets 426 Upgrade Required, as a WebSocket-only server answers.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

type Log = (entry: Record<string, unknown>) => void;

/** Serves on `host:port` (port 0: any); resolves with the bound port. */
export async function serveWebSocketEcho(port: number, name: string, log: Log, host = '0.0.0.0'): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    log({ method: req.method, path: req.url, from: req.socket.remoteAddress });
    req.resume();
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'Upgrade' });
    res.end('Upgrade Required\n');
  });
  const wss = new WebSocketServer({ server, maxPayload: 1024 * 1024 });
  wss.on('connection', (ws, req) => {
    log({ websocket: req.url, from: req.socket.remoteAddress });
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${name}: ${data.toString()}`, { binary: isBinary }));
  });
  server.listen(port, host);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}
