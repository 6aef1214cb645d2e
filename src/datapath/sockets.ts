/** Transparent listeners and marked upstream sockets for the proxies: TCP (HTTP, DNS) and UDP (DNS). */
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { native, type UdpHandle, type UdpRecord } from './native.js';
import { fromProxyMark } from './marks.js';

/**
 * A listening fd that accepts connections addressed to any IP (bpf_sk_assign targets it).
 * `reusePort`: the listener joins the SO_REUSEPORT group on ip:port, so several proxy workers
 * each hold one and the kernel spreads connections over them by the tuple's hash (bpf_sk_assign
 * to a reuseport member selects within its group since Linux 6.5). Without it a second listener
 * on the port fails with EADDRINUSE, which is what catches a stale agent still running.
 */
export function transparentListenFd(port: number, ip = '0.0.0.0', backlog = 1024, reusePort = false): number {
  return native().tcpListenTransparent(ip, port, backlog, reusePort);
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

/**
 * A datagram as a UDP socket of the addon delivers it (the addon's record itself, native.ts
 * `UdpRecord`): `dstIp`/`dstPort` the original destination on a transparent listener; `truncated`
 * when it was longer than the socket keeps (4096 bytes on a transparent listener); `drops` the
 * socket's kernel drops so far (cumulative), when any were.
 */
export type UdpDatagram = Exclude<UdpRecord, { errno: number }>;

/** A UDP socket of the addon. Errors thrown carry `code` (errno name), `errno`, `syscall`, `subject`. */
export interface NativeUdpSocket {
  /** Sends one datagram, to `ip:port` or (connected sockets) to the peer. Never blocks: a full buffer throws EAGAIN. */
  send(data: Uint8Array, ip?: string, port?: number): void;
  /**
   * Queues one datagram; the socket's queue goes in one sendmmsg at the end of the turn (or at
   * SEND_QUEUE_MAX). A datagram that fails calls `onError` then.
   */
  sendQueued(data: Uint8Array, ip: string | undefined, port: number | undefined, onError: (err: NodeJS.ErrnoException) => void): void;
  /**
   * Queues one datagram (as `send`); every socket's queue goes out once the event loop's current
   * phase is over (setImmediate), with one sendmmsg per socket per 64 datagrams instead of a
   * sendto each, or at once when `SEND_QUEUE_MAX` are queued on the socket. `onError` hears of
   * one that could not be sent (EAGAIN: buffer full; EBADF: closed meanwhile; EINVAL: a bad
   * address). `close` sends what is queued first.
   */
  sendQueued(data: Uint8Array, ip?: string, port?: number, onError?: (err: NodeJS.ErrnoException) => void): void;
  address(): { ip: string; port: number };
  /**
   * The receive buffer (SO_RCVBUF as the kernel reports it: twice the bytes asked) and the
   * datagrams the kernel dropped on this socket so far because it was full. Throws once closed.
   */
  receiveInfo(): { receiveBuffer: number; drops: number };
  /** Asks for a receive buffer of `bytes` (SO_RCVBUFFORCE as root, else capped at net.core.rmem_max). */
  setReceiveBuffer(bytes: number): void;
  /** Idempotent. */
  close(): void;
}

/**
 * Hears of datagrams the kernel dropped on a socket (its receive buffer was full), `count` new
 * ones since the last call: from the count each datagram carries (SO_RXQ_OVFL), and on `close`
 * the rest, read from the socket.
 */
export type ReceiveDropHandler = (count: number) => void;

type DatagramHandler = (datagrams: UdpDatagram[]) => void;
type ReceiveErrorHandler = (err: NodeJS.ErrnoException) => void;

/** The drops a socket has reported so far (cumulative, as the kernel counts them). */
interface DropTally {
  seen: number;
  readonly onDrops: ReceiveDropHandler | undefined;
}

function receiver(onDatagrams: DatagramHandler, onError: ReceiveErrorHandler, tally: DropTally): (records: UdpRecord[]) => void {
  return (records) => {
    const out: UdpDatagram[] = [];
    let drops = tally.seen;
    for (const r of records) {
      if ('errno' in r) onError(Object.assign(new Error(`recvmmsg: ${r.error}`), { errno: r.errno, code: osErrorName(r.errno), syscall: 'recvmmsg' }));
      else {
        if (r.drops !== undefined && r.drops > drops) drops = r.drops;
        out.push(r);
      }
    }
    if (drops > tally.seen) {
      const fresh = drops - tally.seen;
      tally.seen = drops;
      tally.onDrops?.(fresh);
    }
    if (out.length > 0) onDatagrams(out);
  };
}

/** Datagrams queued on one socket at most before they are sent without waiting for the turn's end. */
export const SEND_QUEUE_MAX = 1024;

/** One socket's datagrams waiting for `flushQueues` (parallel arrays, as udpSendBatch takes them). */
class SendQueue {
  datas: Uint8Array[] = [];
  ips: string[] = [];
  ports: number[] = [];
  errors: Array<((err: NodeJS.ErrnoException) => void) | undefined> = [];
  readonly handle: UdpHandle;

  constructor(handle: UdpHandle) {
    this.handle = handle;
  }

  flush(): void {
    const count = this.datas.length;
    if (count === 0) return;
    const { datas, ips, ports, errors } = this;
    this.datas = [];
    this.ips = [];
    this.ports = [];
    this.errors = [];
    if (sendStatus.length < count) sendStatus = new Int32Array(Math.max(count, sendStatus.length * 2));
    // A connected socket's queue holds no addresses.
    const addressed = ips.length > 0;
    const failures = native().udpSendBatch(this.handle, datas, addressed ? ips : undefined, addressed ? ports : undefined, sendStatus);
    if (failures === 0) return;
    for (let i = 0; i < count; i++) {
      const errno = sendStatus[i]!;
      if (errno === 0) continue;
      const code = osErrorName(errno);
      errors[i]?.(Object.assign(new Error(`sendmmsg${addressed ? ` to ${ips[i]}:${ports[i]}` : ''}: ${code}`), { errno, code, syscall: 'sendmmsg' }));
    }
  }
}

let sendStatus = new Int32Array(64);
const dirtyQueues = new Set<SendQueue>();
let flushScheduled = false;

function flushQueues(): void {
  flushScheduled = false;
  for (const q of dirtyQueues) {
    dirtyQueues.delete(q);
    q.flush();
  }
}

function wrapUdp(handle: UdpHandle, tally?: DropTally): NativeUdpSocket {
  const n = native();
  let queue: SendQueue | null = null;
  return {
    send: (data, ip, port) => {
      n.udpSend(handle, data, ip, port);
    },
    sendQueued: (data, ip, port, onError) => {
      queue ??= new SendQueue(handle);
      // A connected socket's datagrams carry no address; an addressed socket's, one each.
      if (ip !== undefined) {
        // Mixed on one socket (not done by the proxy): the unaddressed ones fail with EINVAL.
        while (queue.ips.length < queue.datas.length) {
          queue.ips.push('');
          queue.ports.push(-1);
        }
        queue.ips.push(ip);
        queue.ports.push(port ?? -1);
      } else if (queue.ips.length > 0) {
        queue.ips.push('');
        queue.ports.push(-1);
      }
      queue.datas.push(data);
      queue.errors.push(onError);
      if (queue.datas.length >= SEND_QUEUE_MAX) {
        dirtyQueues.delete(queue);
        queue.flush();
        return;
      }
      dirtyQueues.add(queue);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushQueues);
      }
    },
    address: () => n.udpAddress(handle),
    receiveInfo: () => n.udpReceiveInfo(handle),
    setReceiveBuffer: (bytes) => n.udpSetReceiveBuffer(handle, bytes),
    close: () => {
      if (queue) {
        dirtyQueues.delete(queue);
        queue.flush();
      }
      // Drops after the last datagram read are carried by none: read the socket's count once.
      if (tally?.onDrops) {
        let drops = tally.seen;
        try {
          drops = n.udpReceiveInfo(handle).drops;
        } catch {
          // closed already: counted up to its last datagram
        }
        if (drops > tally.seen) {
          const fresh = drops - tally.seen;
          tally.seen = drops;
          tally.onDrops(fresh);
        }
      }
      n.udpClose(handle);
    },
  };
}

/**
 * A transparent UDP listener (IP_TRANSPARENT + IP_RECVORIGDSTADDR): datagrams the datapath
 * assigns to it (bpf_sk_assign) arrive with their original destination, in batches (recvmmsg).
 * `reusePort`: join the SO_REUSEPORT group on ip:port, as `transparentListenFd`.
 */
export function udpListenTransparent(
  port: number,
  ip: string,
  onDatagrams: DatagramHandler,
  onError: ReceiveErrorHandler,
  reusePort = false,
  onDrops?: ReceiveDropHandler,
): NativeUdpSocket {
  const n = native();
  const tally: DropTally = { seen: 0, onDrops };
  return wrapUdp(n.udpListenTransparent(ip, port, receiver(onDatagrams, onError, tally), reusePort), tally);
}

/** A send-only socket bound to `ip:port` (any address), so a reply carries the original destination as its source. */
export function udpReplySocket(ip: string, port: number): NativeUdpSocket {
  return wrapUdp(native().udpReplySocket(ip, port));
}

/**
 * A UDP socket connected to `ip:port` whose every datagram, the first included, carries the
 * source identity in its mark (as `connectMarked` for TCP); the server's replies arrive through
 * `onDatagrams`, and an ICMP error about it (ECONNREFUSED) through `onError`.
 */
export function udpConnectMarked(
  ip: string,
  port: number,
  sourceIdentity: number,
  onDatagrams: DatagramHandler,
  onError: ReceiveErrorHandler,
  onDrops?: ReceiveDropHandler,
): NativeUdpSocket {
  const tally: DropTally = { seen: 0, onDrops };
  return wrapUdp(native().udpConnectMarked(ip, port, fromProxyMark(sourceIdentity), receiver(onDatagrams, onError, tally)), tally);
}
