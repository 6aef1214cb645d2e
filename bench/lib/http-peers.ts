/**
 * Configurations of the HTTP benchmark's servers and peers, all from Debian's packages:
 *
 *   backend      nginx in the server pod, one answer on every port it listens on
 *   haproxy      HAProxy 2.6, 1 thread, reverse proxy with the method/path ACL of the L7 rule;
 *                with an HTTP/2 frontend too: h2c (prior knowledge) in, h2c to the backend
 *   nginx proxy  nginx, 1 worker, reverse proxy with the same ACL; with an HTTP/2 server too:
 *                h2c in, HTTP/1.1 keep-alive to the backend (nginx 1.22's proxy_pass speaks no
 *                HTTP/2 upstream)
 *
 * The ACL is the CiliumNetworkPolicy rule's: method and path are POSIX extended regular
 * expressions matched against the whole method and path (Cilium's HTTP rule, Envoy's
 * safe_regex full match); anything else is refused with 403, as Membrane's proxy refuses it.
 * Neither peer writes an access log (Membrane does): that is part of what is compared.
 */

/** The rule the L7 variants enforce, and the request the load sends (allowed by it). */
export const RULE = { method: 'POST', path: '/v1/request-landing' } as const;
export const ANSWER = 'Ship landed\n';

/**
 * Backend nginx: `worker_processes` auto, every port answers 200 `ANSWER` to any method and path;
 * `h2Ports` speak cleartext HTTP/2 with prior knowledge (h2c) only.
 */
export function backendNginxConf(dir: string, ports: readonly number[], h2Ports: readonly number[] = []): string {
  return `
worker_processes auto;
daemon off;
pid ${dir}/backend.pid;
error_log stderr warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
${ports.map((p) => `    listen ${p} backlog=4096;`).join('\n')}
    location / { return 200 ${JSON.stringify(ANSWER.trimEnd())}; }
  }
${h2Ports.length ? `  server {
${h2Ports.map((p) => `    listen ${p} http2 backlog=4096;`).join('\n')}
    location / { return 200 ${JSON.stringify(ANSWER.trimEnd())}; }
  }` : ''}
}
`;
}

/** Where a peer's HTTP/2 (h2c) frontend listens and which backend it forwards to. */
export interface H2Frontend {
  readonly listen: string;
  readonly backend: string;
}

/**
 * HAProxy: 1 thread, the rule as ACLs, keep-alive to the backend (`http-reuse always`). With `h2`,
 * a second frontend takes h2c with prior knowledge (`bind … proto h2`) and forwards over h2c
 * (`server … proto h2`, streams of many clients multiplexed on reused connections).
 */
export function haproxyConf(listen: string, backend: string, h2?: H2Frontend): string {
  const acl = `  acl rule_method method ${RULE.method}
  acl rule_path path_reg ^${RULE.path}$
  http-request deny deny_status 403 unless rule_method rule_path`;
  return `
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend bench
  bind ${listen}
${acl}
  default_backend deathstar
backend deathstar
  http-reuse always
  server deathstar ${backend} maxconn 1000
${h2 ? `frontend bench_h2
  bind ${h2.listen} proto h2
${acl}
  default_backend deathstar_h2
backend deathstar_h2
  http-reuse always
  server deathstar_h2 ${h2.backend} proto h2 maxconn 1000
` : ''}`;
}

/**
 * nginx reverse proxy: 1 worker, the rule as a regex location + `limit_except`, upstream keep-alive.
 * With `h2Listen`, a second server takes h2c with prior knowledge (`listen … http2`) with the same
 * rule and the same HTTP/1.1 upstream.
 */
export function proxyNginxConf(dir: string, listen: string, backend: string, h2Listen?: string): string {
  const locations = `    location ~ ^${RULE.path}$ {
      limit_except ${RULE.method} { deny all; }
      proxy_pass http://deathstar;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location / { return 403; }`;
  return `
worker_processes 1;
daemon off;
pid ${dir}/proxy-nginx.pid;
error_log stderr warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  upstream deathstar { server ${backend}; keepalive 256; }
  server {
    listen ${listen} backlog=4096;
${locations}
  }
${h2Listen ? `  server {
    listen ${h2Listen} http2 backlog=4096;
${locations}
  }
` : ''}}
`;
}
