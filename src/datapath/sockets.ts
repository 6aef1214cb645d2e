/** Transparent listener and marked upstream sockets for the proxies. */
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { native } from './native.js';
import { fromProxyMark } from './marks.js';

/** A listening fd that accepts connections addressed to any IP (bpf_sk_assign targets it). */
export function transparentListenFd(port: number, ip = '0.0.0.0', backlog = 1024): number {
  return native().tcpListenTransparent(ip, port, backlog);
}

/**
 * A socket connecting to ip:port whose every packet, the SYN included, carries the original
 * source identity in its mark, so the destination's policy judges the pod, not the node.
 */
export function connectMarked(ip: string, port: number, sourceIdentity: number): Socket {
  const n = native();
  const fd = n.tcpConnectMarked(ip, port, fromProxyMark(sourceIdentity));
  const socket = new Socket({ fd, readable: true, writable: true });
  // Node takes a socket built from an fd as already connected: writes made now would go to a
  // socket still in SYN_SENT and stall. Marking it connecting makes Node hold reads and writes
  // until 'connect', which we emit when the addon sees the handshake finish, as net.connect would.
  (socket as { connecting: boolean }).connecting = true;
  n.awaitConnect(fd, (errno) => {
    if (socket.destroyed) return;
    if (errno === 0) {
      (socket as { connecting: boolean }).connecting = false;
      socket.emit('connect');
      socket.emit('ready');
    } else {
      socket.destroy(Object.assign(new Error(`connect ${ip}:${port}: ${osErrorName(errno)}`), { code: osErrorName(errno), errno, syscall: 'connect' }));
    }
  });
  return socket;
}

function osErrorName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return `E${errno}`;
}
