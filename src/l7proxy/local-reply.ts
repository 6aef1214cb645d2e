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
}

export const DENIED: LocalReply = { status: 403, body: ACCESS_DENIED_BODY };
export const BAD_REQUEST: LocalReply = { status: 400, body: 'Bad Request\r\n' };
export const UPSTREAM_UNAVAILABLE: LocalReply = { status: 503, body: 'upstream connect error\r\n' };
export const BAD_GATEWAY: LocalReply = { status: 502, body: 'upstream protocol error\r\n' };
export const REQUEST_TIMEOUT: LocalReply = { status: 408, body: 'Request Timeout\r\n' };
export const NOT_IMPLEMENTED: LocalReply = { status: 501, body: 'Not Implemented\r\n' };
export const GATEWAY_TIMEOUT: LocalReply = { status: 504, body: 'upstream request timeout\r\n' };

/** Writes a local reply; `close` adds `Connection: close` (the request body was not read). */
export function sendLocalReply(res: ServerResponse, reply: LocalReply, close = false): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {
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

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 501: 'Not Implemented' };
