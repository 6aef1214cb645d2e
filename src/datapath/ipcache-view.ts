/**
 * The pinned ipcache map as the proxy workers use it: the destination identity of an IP that is
 * not a local endpoint, read from the very map the datapath judged the packet by (LPM lookup, as
 * bpf/lib/ipcache.h). FQDN IPs are written there before their DNS answer is released, so a worker
 * sees them without any message from the agent. One write: `insertIfAbsent`, a learned address
 * the map holds no entry for (src/proxyworker/prelearn.ts); everything else is the agent's.
 */
import { join } from 'node:path';
import { native } from './native.js';
import { ipv4ToNumber } from './layout.js';
import { ipcacheKey, ipcacheValue, IPCACHE_MAP } from './maps/ipcache.js';

/** Cilium's reserved `world` identity: what the datapath uses for an address the ipcache lacks. */
const WORLD = 2;
/** bpf(2) BPF_MAP_UPDATE_ELEM flag: create only, fail with EEXIST when the key is there. */
const BPF_NOEXIST = 1;

export class IpcacheView {
  #fd: number;

  /** Opens `<pinRoot>/membrane_ipcache`; throws MEMBRANE_ERR_DATAPATH_MAP when it is not pinned. */
  constructor(pinRoot: string) {
    this.#fd = native().objGet(join(pinRoot, IPCACHE_MAP));
  }

  /** The identity the datapath resolves `ip` (dotted quad) to; `world` (2) when no prefix holds it. */
  identityOf(ip: string): number {
    return this.identityWithin(ip, 32);
  }

  /**
   * The identity of the longest entry of at most `bits` bits that holds `ip` (an LPM lookup with a
   * shorter key: 31 sees past the address's own /32); `world` (2) when none does.
   */
  identityWithin(ip: string, bits: number): number {
    const key = ipcacheKey.encode({ lpm_key: bits, addr: ipv4ToNumber(ip) });
    const v = native().mapLookup(this.#fd, key, ipcacheValue.size);
    return v ? ipcacheValue.decode(v).sec_identity : WORLD;
  }

  /** Deletes `ip`/32 if it still holds `identity` (a write of the caller's that must not stay). */
  deleteIfHeld(ip: string, identity: number): void {
    const key = ipcacheKey.encode({ lpm_key: 32, addr: ipv4ToNumber(ip) });
    try {
      const v = native().mapLookup(this.#fd, key, ipcacheValue.size);
      if (v && ipcacheValue.decode(v).sec_identity === identity) native().mapDelete(this.#fd, key);
    } catch {
      // gone already, or the map is unusable: the agent's next full pass deletes what it did not write
    }
  }

  /**
   * Writes `ip`/32 → `identity` only if the map holds no /32 entry for `ip` (BPF_NOEXIST: atomic
   * against the agent and the other workers). False when one is there or the write failed: the
   * caller then leaves the address to the agent.
   */
  insertIfAbsent(ip: string, identity: number): boolean {
    const key = ipcacheKey.encode({ lpm_key: 32, addr: ipv4ToNumber(ip) });
    try {
      native().mapUpdate(this.#fd, key, ipcacheValue.encode({ sec_identity: identity, reserved_0: 0 }), BPF_NOEXIST);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.#fd >= 0) native().closeFd(this.#fd);
    this.#fd = -1;
  }
}
