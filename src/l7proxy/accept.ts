/**
 * Stage 1, accept: the 4-tuple of a new downstream connection (original destination included) and
 * the flow context for it. Runs once per connection, before any byte is parsed; a connection that
 * cannot be attributed is closed (fail closed).
 */

import { isIP, type Socket } from 'node:net';
import type { ConnectionInfo, FlowContext, L7ProxyDeps } from './types.js';

/** `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 peers look the same on dual-stack listeners. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** The connection's addresses; null when the socket has none (already closed). */
export function connectionInfo(socket: Socket, originalDestination?: L7ProxyDeps['originalDestination']): ConnectionInfo | null {
  const srcIp = socket.remoteAddress;
  const srcPort = socket.remotePort;
  if (srcIp === undefined || srcPort === undefined) return null;
  const dst = originalDestination ? originalDestination(socket) : { ip: socket.localAddress, port: socket.localPort };
  if (dst.ip === undefined || dst.port === undefined || dst.ip === '' || dst.port === 0) return null;
  return { srcIp: normalizeIp(srcIp), srcPort, dstIp: normalizeIp(dst.ip), dstPort: dst.port };
}

export type AcceptResult =
  | { ok: true; conn: ConnectionInfo; ctx: FlowContext }
  | { ok: false; reason: 'no-address' | 'unknown-source' | 'resolve-error' | 'not-redirected'; conn: ConnectionInfo | null; error?: unknown };

/**
 * `isSelf(conn)` says whether the original destination is the proxy's own listener: a connection
 * made straight to the proxy port rather than redirected by the datapath, which would loop.
 */
export function acceptConnection(
  socket: Socket,
  deps: Pick<L7ProxyDeps, 'resolveConnection' | 'originalDestination'>,
  isSelf: (conn: ConnectionInfo) => boolean = () => false,
): AcceptResult {
  let conn: ConnectionInfo | null;
  try {
    conn = connectionInfo(socket, deps.originalDestination?.bind(deps));
  } catch (error) {
    return { ok: false, reason: 'no-address', conn: null, error };
  }
  if (!conn) return { ok: false, reason: 'no-address', conn: null };
  if (isSelf(conn)) return { ok: false, reason: 'not-redirected', conn };
  let ctx: FlowContext | null;
  try {
    ctx = deps.resolveConnection(conn);
  } catch (error) {
    return { ok: false, reason: 'resolve-error', conn, error };
  }
  if (!ctx) return { ok: false, reason: 'unknown-source', conn };
  return { ok: true, conn, ctx };
}
