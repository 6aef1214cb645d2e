/** Transparent listener and marked upstream sockets for the proxies. */
import { Socket } from 'node:net';
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
  const fd = native().tcpConnectMarked(ip, port, fromProxyMark(sourceIdentity));
  return new Socket({ fd, readable: true, writable: true });
}
