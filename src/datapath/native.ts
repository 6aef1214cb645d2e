/**
 * The typed face of the membrane_native addon (native/). Only this module loads it, so a
 * missing build fails in one place with one clear error.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { membraneError } from '../errors/index.js';

declare const bpfObjectBrand: unique symbol;
declare const ringbufBrand: unique symbol;
export type BpfObjectHandle = { readonly [bpfObjectBrand]: true };
export type RingbufHandle = { readonly [ringbufBrand]: true };

export interface NativeAddon {
  loadObject(path: string, pinRoot: string): BpfObjectHandle;
  programFd(obj: BpfObjectHandle, name: string): number;
  closeObject(obj: BpfObjectHandle): void;
  attachTcx(progFd: number, ifindex: number, direction: 'ingress' | 'egress', linkPinPath: string): 'created' | 'replaced';
  numPossibleCpus(): number;
  progTestRun(progFd: number, packet: Uint8Array, ctx?: { ifindex?: number; mark?: number }): { retval: number; mark: number };
  objGet(path: string): number;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): void;
  mapLookup(fd: number, key: Uint8Array, valueSize: number): Uint8Array | null;
  mapDelete(fd: number, key: Uint8Array): boolean;
  mapDump(fd: number, keySize: number, valueSize: number): { keys: Uint8Array; values: Uint8Array; count: number };
  mapUpdateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number): void;
  closeFd(fd: number): void;
  ringbufOpen(mapFd: number, callback: (records: Uint8Array[]) => void): RingbufHandle;
  ringbufClose(handle: RingbufHandle): void;
  tcpListenTransparent(ip: string, port: number, backlog: number): number;
  tcpConnectMarked(ip: string, port: number, mark: number): number;
  awaitConnect(fd: number, callback: (errno: number) => void): void;
}

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADDON_PATH = fileURLToPath(new URL('../../native/build/Release/membrane_native.node', import.meta.url));

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw membraneError('MEMBRANE_ERR_DATAPATH_NATIVE', `${ADDON_PATH} is missing; run scripts/setup.sh`);
  }
  cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  return cached;
}
