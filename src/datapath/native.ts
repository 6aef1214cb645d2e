/**
 * The typed face of the membrane_native addon (native/). Only this module loads it, so a
 * missing build fails in one place with one clear error, and a failed map operation is one
 * kind of error: MEMBRANE_ERR_DATAPATH_MAP naming the map (not its fd), the syscall and errno.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { membraneError } from '../errors/index.js';

declare const bpfObjectBrand: unique symbol;
declare const ringbufBrand: unique symbol;
declare const udpBrand: unique symbol;
export type BpfObjectHandle = { readonly [bpfObjectBrand]: true };
export type RingbufHandle = { readonly [ringbufBrand]: true };
export type UdpHandle = { readonly [udpBrand]: true };

/**
 * One datagram from a UDP handle (native/src/udp.cc): `dst` is the original destination on a
 * transparent listener, the socket's own address otherwise; `truncated` when it was longer than
 * the handle keeps (4096 bytes on a listener). A receive error arrives as `{errno, error}`.
 */
export type UdpRecord =
  | {
      data: Buffer;
      srcIp: string;
      srcPort: number;
      dstIp: string;
      dstPort: number;
      truncated: boolean;
      /** The socket's datagrams dropped by the kernel so far (SO_RXQ_OVFL, cumulative); absent while none were. */
      drops?: number;
    }
  | { errno: number; error: string };

export interface NativeAddon {
  loadObject(path: string, pinRoot: string): BpfObjectHandle;
  programFd(obj: BpfObjectHandle, name: string): number;
  closeObject(obj: BpfObjectHandle): void;
  attachTcx(progFd: number, ifindex: number, direction: 'ingress' | 'egress', linkPinPath: string): 'created' | 'replaced';
  /** if_nametoindex in the calling thread's network namespace; 0 when there is no such link. */
  linkIndex(ifname: string): number;
  /** Every IPv4 address of every link (up or down), getifaddrs, as `ip -4 addr show` lists them. */
  ipv4Addresses(): string[];
  /** The same addresses by one RTM_GETADDR dump (native/src/control.cc): no link dump, cheap with thousands of links. */
  ipv4AddressDump(): string[];
  /** setpriority(PRIO_PROCESS, gettid(), nice): the calling thread only; threads it creates later inherit it. */
  threadNice(nice: number): void;
  /** The calling thread's nice value. */
  threadNiceValue(): number;
  numPossibleCpus(): number;
  progTestRun(progFd: number, packet: Uint8Array, ctx?: { ifindex?: number; mark?: number }): { retval: number; mark: number };
  objGet(path: string): number;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): void;
  mapLookup(fd: number, key: Uint8Array, valueSize: number): Uint8Array | null;
  mapDelete(fd: number, key: Uint8Array): boolean;
  mapDump(fd: number, keySize: number, valueSize: number): { keys: Uint8Array; values: Uint8Array; count: number };
  mapUpdateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number): void;
  /** The whole map by BPF_MAP_LOOKUP_BATCH (one syscall for an array read whole); `valueSize` per entry as the kernel copies it (per-CPU: round_up(size, 8) × CPUs). */
  mapLookupBatch(fd: number, keySize: number, valueSize: number, maxEntries: number): { keys: Uint8Array; values: Uint8Array; count: number };
  /** BPF_OBJ_GET_INFO_BY_FD: the map's type (bpf_map_type), key and value sizes and capacity. */
  mapInfo(fd: number): { type: number; keySize: number; valueSize: number; maxEntries: number };
  closeFd(fd: number): void;
  ringbufOpen(mapFd: number, callback: (records: Uint8Array[]) => void): RingbufHandle;
  ringbufClose(handle: RingbufHandle): void;
  /** `reusePort`: join the SO_REUSEPORT group on ip:port (proxy workers). Default false. */
  tcpListenTransparent(ip: string, port: number, backlog: number, reusePort?: boolean): number;
  tcpConnectMarked(ip: string, port: number, mark: number): number;
  awaitConnect(fd: number, callback: (errno: number) => void): void;
  udpListenTransparent(ip: string, port: number, callback: (records: UdpRecord[]) => void, reusePort?: boolean): UdpHandle;
  udpReplySocket(ip: string, port: number): UdpHandle;
  udpConnectMarked(ip: string, port: number, mark: number, callback: (records: UdpRecord[]) => void): UdpHandle;
  udpSend(handle: UdpHandle, data: Uint8Array, ip?: string, port?: number): number;
  /** sendmmsg of `datas` (to `ips[i]:ports[i]`, or the connected peer); `status[i]` 0 or the errno of datagram i; returns the failures. */
  udpSendBatch(handle: UdpHandle, datas: Uint8Array[], ips: string[] | undefined, ports: number[] | undefined, status: Int32Array): number;
  udpAddress(handle: UdpHandle): { ip: string; port: number };
  udpClose(handle: UdpHandle): void;
  /** SO_RCVBUF as the kernel reports it (twice the bytes asked) and the datagrams it dropped on the socket so far (SK_MEMINFO_DROPS). */
  udpReceiveInfo(handle: UdpHandle): { receiveBuffer: number; drops: number };
  /** Asks for a receive buffer of `bytes` (SO_RCVBUFFORCE, else SO_RCVBUF capped at net.core.rmem_max). */
  udpSetReceiveBuffer(handle: UdpHandle, bytes: number): void;
}

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADDON_PATH = fileURLToPath(new URL('../../native/build/Release/membrane_native.node', import.meta.url));

/** What the addon throws for a failed syscall (native/src/addon.cc ThrowSystemError). */
interface NativeSystemError extends Error {
  errno: number;
  syscall: string;
  /** The path or object it concerned: `map <name>` for map calls, the pin path for objGet. */
  subject: string;
  /** Map calls: the map's name (the pin file name it was opened under). */
  map?: string;
}

/** The addon calls that work on a map: their failures become MEMBRANE_ERR_DATAPATH_MAP. */
const MAP_CALLS = ['objGet', 'mapUpdate', 'mapLookup', 'mapDelete', 'mapDump', 'mapUpdateBatch', 'mapLookupBatch', 'mapInfo', 'ringbufOpen'] as const;

/**
 * A failed map call as MEMBRANE_ERR_DATAPATH_MAP: message `<syscall> map <name>: <strerror>
 * (<ERRNO>)`, details `{map, syscall, errno}` (errno by name, from libuv's table). An argument
 * TypeError is a programming error and passes through unchanged.
 */
export function mapError(err: unknown): unknown {
  const e = err as Partial<NativeSystemError> | null;
  if (typeof e?.syscall !== 'string' || typeof e.errno !== 'number') return err;
  const map = e.map ?? basename(e.subject ?? '');
  let errno: string;
  try {
    errno = getSystemErrorName(-Math.abs(e.errno));
  } catch {
    errno = `errno ${e.errno}`;
  }
  return membraneError('MEMBRANE_ERR_DATAPATH_MAP', `${e.message ?? e.syscall} (${errno})`, {
    cause: err,
    details: { map, syscall: e.syscall, errno },
  });
}

function withMapErrors(addon: NativeAddon): NativeAddon {
  const wrapped: NativeAddon = { ...addon };
  for (const name of MAP_CALLS) {
    const call = addon[name] as (...args: unknown[]) => unknown;
    (wrapped as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      try {
        return call(...args);
      } catch (err) {
        throw mapError(err);
      }
    };
  }
  return wrapped;
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw membraneError('MEMBRANE_ERR_DATAPATH_NATIVE', `${ADDON_PATH} is missing; run scripts/setup.sh`);
  }
  cached = withMapErrors(createRequire(import.meta.url)(ADDON_PATH) as NativeAddon);
  return cached;
}
