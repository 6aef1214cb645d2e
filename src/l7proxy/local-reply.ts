/**
 * Answers the proxy writes itself: the policy denial (byte-for-byte Cilium's) and upstream
 * failures. Each is short, `text/plain`, and has a Content-Length.
 */

import type { ServerResponse } from 'node:http';

/** Cilium's default `denied_403_body`: "Access denied" plus CRLF. */
export const ACCESS_DENIED_BODY = 'Access denied\r\n';

export interface LocalReply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export const DENIED: LocalReply = { status: 403, body: ACCESS_DENIED_BODY };
export const BAD_REQUEST: LocalReply = { status: 400, body: 'Bad Request\r\n' };
export const REQUEST_TIMEOUT: LocalReply = { status: 408, body: 'Request Timeout\r\n' };
export const NOT_IMPLEMENTED: LocalReply = { status: 501, body: 'Not Implemented\r\n' };
/** Envoy's answer to a header block over its limits (max_request_headers_kb, max_headers_count). */
export const HEADERS_TOO_LARGE: LocalReply = { status: 431, body: 'Request Header Fields Too Large\r\n' };

/**
 * Envoy's router local-reply texts (`source/common/router/router.cc`), so a Cilium user reads the
 * same words: "… before headers. reset reason: <Envoy StreamResetReason>" for resets, "upstream
 * request timeout" for the route timeout. No trailing newline, as Envoy sends them.
 */
const RESET_BEFORE_HEADERS = 'upstream connect error or disconnect/reset before headers. reset reason: ';
/** Connect refused, unreachable, or the socket factory failed (Envoy response flag UF). */
export const UPSTREAM_CONNECT_FAILURE: LocalReply = { status: 503, body: `${RESET_BEFORE_HEADERS}connection failure` };
/** Connect did not complete in time (Envoy: UF, reset reason "connection timeout"). */
export const UPSTREAM_CONNECT_TIMEOUT: LocalReply = { status: 503, body: `${RESET_BEFORE_HEADERS}connection timeout` };
/** Connected, then the upstream closed or reset before answering (Envoy response flag UC). */
export const UPSTREAM_RESET: LocalReply = { status: 503, body: `${RESET_BEFORE_HEADERS}connection termination` };
/** The proxy itself gave up on the request (shutting down) before the upstream answered. */
export const UPSTREAM_LOCAL_RESET: LocalReply = { status: 503, body: `${RESET_BEFORE_HEADERS}local reset` };
/** The upstream's response could not be parsed or relayed (Envoy response flag UPE, 502). */
export const UPSTREAM_PROTOCOL_ERROR: LocalReply = { status: 502, body: `${RESET_BEFORE_HEADERS}protocol error` };
/** The route timeout (Cilium `--http-request-timeout`) expired before response headers (Envoy UT). */
export const GATEWAY_TIMEOUT: LocalReply = { status: 504, body: 'upstream request timeout' };

/** Envoy's answer to a path with escaped slashes under UNESCAPE_AND_REDIRECT: 307, empty body. */
export function pathRedirect(location: string): LocalReply {
  return { status: 307, body: '', headers: { location } };
}

/** Writes a local reply; `close` adds `Connection: close` (the request body was not read). */
export function sendLocalReply(res: ServerResponse, reply: LocalReply, close = false): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {
    ...reply.headers,
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(reply.body),
  };
  if (close) {
    headers.connection = 'close';
    res.shouldKeepAlive = false;
  }
  res.writeHead(reply.status, headers);
  res.end(reply.body);
}

/** The raw bytes for a reply written on a socket without a response object (parse errors). */
export function rawReply(reply: LocalReply): string {
  const text = STATUS_TEXT[reply.status] ?? 'Error';
  return `HTTP/1.1 ${reply.status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(reply.body)}\r\nconnection: close\r\n\r\n${reply.body}`;
}

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 501: 'Not Implemented' };
