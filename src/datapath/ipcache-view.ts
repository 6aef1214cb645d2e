/**
 * A read-only view of the pinned ipcache map for the proxy workers: the destination identity of
 * an IP that is not a local endpoint, read from the very map the datapath judged the packet by
 * (LPM lookup, as bpf/lib/ipcache.h). FQDN IPs are written there before their DNS answer is
 * released, so a worker sees them without any message from the agent.
 */
import { join } from 'node:path';
import { native } from './native.js';
import { ipv4ToNumber } from './layout.js';
import { ipcacheKey, ipcacheValue, IPCACHE_MAP } from './maps/ipcache.js';

/** Cilium's reserved `world` identity: what the datapath uses for an address the ipcache lacks. */
const WORLD = 2;

export class IpcacheReader {
  #fd: number;

  /** Opens `<pinRoot>/membrane_ipcache`; throws MEMBRANE_ERR_DATAPATH_MAP when it is not pinned. */
  constructor(pinRoot: string) {
    this.#fd = native().objGet(join(pinRoot, IPCACHE_MAP));
  }

  /** The identity the datapath resolves `ip` (dotted quad) to; `world` (2) when no prefix holds it. */
  identityOf(ip: string): number {
    const key = ipcacheKey.encode({ lpm_key: 32, addr: ipv4ToNumber(ip) });
    const v = native().mapLookup(this.#fd, key, ipcacheValue.size);
    return v ? ipcacheValue.decode(v).sec_identity : WORLD;
  }

  close(): void {
    if (this.#fd >= 0) native().closeFd(this.#fd);
    this.#fd = -1;
  }
}
