/**
 * The lab's "world": the public sites a pod reaches by name. HTTPS on 443 (HTTP/2 via ALPN,
 * HTTP/1.1 for clients that do not offer h2) with the lab CA's certificate for every site, and
 * plain HTTP on 80 answering `301 Moved Permanently` to the HTTPS URL, as public sites do.
 * A request for a host that is not a site gets 421 Misdirected Request (RFC 9110 §15.5.20).
 * Each request is one JSON line on stdout, so tests can see what reached the world.
 */
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';

export interface WorldConfig {
  readonly name: string;
  readonly sites: readonly { host: string; status: number; location?: string }[];
  readonly cert: string;
  readonly key: string;
  readonly httpsPort: number;
  readonly httpPort: number;
}

type Log = (entry: Record<string, unknown>) => void;

/** Host of a request without the port: :authority for HTTP/2, Host for HTTP/1.1. */
function hostOf(req: IncomingMessage | Http2ServerRequest): string {
  const authority = (req as Http2ServerRequest).authority ?? req.headers.host ?? '';
  return authority.replace(/:\d+$/, '').toLowerCase();
}

export function serveWorld(config: WorldConfig, log: Log): void {
  const sites = new Map(config.sites.map((s) => [s.host, s]));
  const https = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    const host = hostOf(req);
    const site = sites.get(host);
    log({ scheme: 'https', version: req.httpVersion, method: req.method, host, path: req.url, from: req.socket.remoteAddress });
    req.resume();
    if (!site) {
      res.writeHead(421, { 'content-type': 'text/plain' });
      res.end(`${host} is not served by ${config.name}\n`);
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'text/html; charset=utf-8', server: `membrane-lab-${config.name}` };
    if (site.location) headers.location = site.location;
    res.writeHead(site.status, headers);
    res.end(`<html><body>${host} (lab world ${config.name})</body></html>\n`);
  };
  createSecureServer({ allowHTTP1: true, cert: readFileSync(config.cert), key: readFileSync(config.key) }, https).listen(config.httpsPort, '0.0.0.0');

  const http = (req: IncomingMessage, res: ServerResponse): void => {
    const host = hostOf(req);
    log({ scheme: 'http', version: req.httpVersion, method: req.method, host, path: req.url, from: req.socket.remoteAddress });
    req.resume();
    if (!sites.has(host)) {
      res.writeHead(421, { 'content-type': 'text/plain' });
      res.end(`${host} is not served by ${config.name}\n`);
      return;
    }
    res.writeHead(301, { location: `https://${host}${req.url ?? '/'}`, 'content-length': '0' });
    res.end();
  };
  createServer(http).listen(config.httpPort, '0.0.0.0');
}
