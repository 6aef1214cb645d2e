/**
 * The loaded datapath: one BPF object whose maps are pinned under a pin root, its programs
 * attached to endpoint links through pinned TCX links, and typed access to every map.
 *
 *   open()  ─ mount bpffs if needed ─ load object (pinned maps reused, never flushed)
 *           ─ open map fds ─ program fds
 *   attachEndpoint(ifname) ─ TCX ingress: from_endpoint, TCX egress: to_endpoint
 *                            (an existing pinned link is updated in place)
 *
 * Pins outlive the agent: while it is stopped or restarting, the kernel keeps enforcing
 * with the last programs and map contents.
 */
import { mkdirSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { membraneError } from '../errors/index.js';
import { native, REPO_ROOT, type BpfObjectHandle, type RingbufHandle } from './native.js';
import { ensureBpffs } from './system.js';
import { ipcacheKey, ipcacheValue, IPCACHE_MAP } from './maps/ipcache.js';
import { endpointInfo, endpointKey, ENDPOINTS_MAP } from './maps/endpoints.js';
import { encodePolicyEntry, policyEntry, policyKey, POLICY_MAP, type PolicyMapEntry } from './maps/policy.js';
import { ctEntry, ctKey, CT_MAP } from './maps/conntrack.js';
import { FRAG_MAP } from './maps/frag.js';
import { metricsValue, METRICS_ENTRIES, METRICS_MAP, METRICS_REASON_MAX } from './maps/metrics.js';
import { flowEvent, EVENT_DIRECTION, EVENTS_MAP, type FlowEvent } from './maps/events.js';
import { ipv4ToNumber, numberToIpv4 } from './layout.js';

export const DEFAULT_OBJECT_PATH = join(REPO_ROOT, 'bpf/build/membrane.bpf.o');
export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/membrane';

export interface DatapathOptions {
  readonly pinRoot: string;
  readonly objectPath?: string;
}

export interface EndpointMapValue {
  readonly ifindex: number;
  readonly identity: number;
  readonly endpointId: number;
  readonly ingressEnforced: boolean;
  readonly egressEnforced: boolean;
}

export interface CtEntryView {
  readonly saddr: string;
  readonly daddr: string;
  readonly sport: number;
  readonly dport: number;
  readonly protocol: number;
  readonly direction: 'egress' | 'ingress';
  readonly packets: bigint;
  readonly srcIdentity: number;
  readonly proxyPort: number;
  readonly flags: number;
  /** When the entry expires, seconds since boot (`ctNow()`'s clock); an expired entry is no connection. */
  readonly expires: number;
}

/**
 * Now on the conntrack clock: whole seconds since boot on CLOCK_MONOTONIC, as the programs read
 * it (`ct_now()`, bpf_ktime_get_coarse_ns; Node's hrtime is CLOCK_MONOTONIC too).
 */
export function ctNow(): number {
  return Number(process.hrtime.bigint() / 1_000_000_000n);
}

/** Policy map contents by endpoint id: key (hex) → the key bytes and the value (hex). */
/** One counter of membrane_metrics, summed over CPUs (Cilium's metricsmap entry). */
export interface MetricsCounter {
  /** 0 forwarded, otherwise the drop reason (src/codes drop-reasons). */
  readonly reason: number;
  readonly direction: 'INGRESS' | 'EGRESS' | 'UNKNOWN';
  readonly packets: bigint;
  readonly bytes: bigint;
}

/** A map's fill: entries now and its capacity (max_entries). */
export interface MapPressure {
  readonly mapName: string;
  readonly entries: number;
  readonly maxEntries: number;
}

export type PolicySnapshot = Map<number, Map<string, { key: Uint8Array; valueHex: string }>>;

/**
 * Policy-map deletes a writer holds back until it has changed another map (the Regenerator's
 * full pass: stale entries go only after the ipcache has moved its addresses, Cilium's
 * add-before-delete order). Each call deletes one entry and says whether it was there.
 */
export type DeferredDeletes = (() => boolean)[];

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

export class Datapath {
  readonly pinRoot: string;
  #obj: BpfObjectHandle | null;
  #fromEndpointFd: number;
  #toEndpointFd: number;
  #maps = new Map<string, number>();
  #ringbufs = new Set<RingbufHandle>();

  private constructor(pinRoot: string, obj: BpfObjectHandle) {
    this.pinRoot = pinRoot;
    this.#obj = obj;
    const n = native();
    this.#fromEndpointFd = n.programFd(obj, 'from_endpoint');
    this.#toEndpointFd = n.programFd(obj, 'to_endpoint');
    for (const name of [IPCACHE_MAP, ENDPOINTS_MAP, POLICY_MAP, CT_MAP, FRAG_MAP, METRICS_MAP, EVENTS_MAP]) {
      this.#maps.set(name, n.objGet(join(pinRoot, name)));
    }
  }

  static open(opts: DatapathOptions): Datapath {
    const objectPath = opts.objectPath ?? DEFAULT_OBJECT_PATH;
    if (!existsSync(objectPath)) {
      throw membraneError('MEMBRANE_ERR_DATAPATH_LOAD', `${objectPath} is missing; run scripts/setup.sh`);
    }
    ensureBpffs(opts.pinRoot);
    mkdirSync(join(opts.pinRoot, 'links'), { recursive: true });
    retireStaleMetricsPin(opts.pinRoot);
    let obj: BpfObjectHandle;
    try {
      obj = native().loadObject(objectPath, opts.pinRoot);
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_DATAPATH_LOAD', `${objectPath} with pin root ${opts.pinRoot}: ${(err as Error).message}`, { cause: err });
    }
    return new Datapath(opts.pinRoot, obj);
  }

  #fd(name: string): number {
    const fd = this.#maps.get(name);
    if (fd === undefined) throw membraneError('MEMBRANE_ERR_DATAPATH_MAP', `${name} is not open`);
    return fd;
  }

  #linkPin(ifname: string, direction: 'ingress' | 'egress'): string {
    // bpffs refuses names with a dot in them.
    return join(this.pinRoot, 'links', `${ifname}_${direction}`);
  }

  /** Attaches (or atomically replaces) both programs on an endpoint's host-side link. */
  attachEndpoint(ifname: string, ifindex: number): void {
    const n = native();
    try {
      n.attachTcx(this.#fromEndpointFd, ifindex, 'ingress', this.#linkPin(ifname, 'ingress'));
      n.attachTcx(this.#toEndpointFd, ifindex, 'egress', this.#linkPin(ifname, 'egress'));
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_DATAPATH_ATTACH', `${ifname} (ifindex ${ifindex}): ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Runs one program once on a packet (BPF_PROG_TEST_RUN) against the live maps: the
   * datapath's own tests use it to check the C lookup against the shared case table.
   */
  runProgram(program: 'from_endpoint' | 'to_endpoint', packet: Uint8Array, ctx: { ifindex?: number; mark?: number } = {}): { verdict: 'pass' | 'drop'; mark: number } {
    const fd = program === 'from_endpoint' ? this.#fromEndpointFd : this.#toEndpointFd;
    const r = native().progTestRun(fd, packet, ctx);
    return { verdict: r.retval === 2 ? 'drop' : 'pass', mark: r.mark };
  }

  /** Removes the link pins: the kernel detaches a TCX link once nothing holds it. */
  detachEndpoint(ifname: string): void {
    rmSync(this.#linkPin(ifname, 'ingress'), { force: true });
    rmSync(this.#linkPin(ifname, 'egress'), { force: true });
  }

  attachedInterfaces(): string[] {
    const names = new Set<string>();
    for (const f of readdirSync(join(this.pinRoot, 'links'))) names.add(f.replace(/_(ingress|egress)$/, ''));
    return [...names].sort();
  }

  // ── ipcache ────────────────────────────────────────────────────────────────────────────

  upsertIpcache(prefix: string, identity: number): void {
    const { key } = encodeIpcacheKey(prefix);
    native().mapUpdate(this.#fd(IPCACHE_MAP), key, ipcacheValue.encode({ sec_identity: identity, reserved_0: 0 }), 0);
  }

  deleteIpcache(prefix: string): boolean {
    return native().mapDelete(this.#fd(IPCACHE_MAP), encodeIpcacheKey(prefix).key);
  }

  dumpIpcache(): Map<string, number> {
    const out = new Map<string, number>();
    this.#dump(IPCACHE_MAP, ipcacheKey.size, ipcacheValue.size, (k, v) => {
      const key = ipcacheKey.decode(k);
      out.set(`${numberToIpv4(key.addr)}/${key.lpm_key}`, ipcacheValue.decode(v).sec_identity);
    });
    return out;
  }

  /** Makes the ipcache equal to `desired`: new and changed entries first, stale ones last. */
  syncIpcache(desired: ReadonlyMap<string, number>): { upserted: number; deleted: number } {
    const current = this.dumpIpcache();
    let upserted = 0;
    let deleted = 0;
    for (const [prefix, id] of desired) {
      const normal = normalisePrefix(prefix);
      if (current.get(normal) !== id) {
        this.upsertIpcache(normal, id);
        upserted++;
      }
      current.delete(normal);
    }
    for (const prefix of current.keys()) {
      this.deleteIpcache(prefix);
      deleted++;
    }
    return { upserted, deleted };
  }

  // ── endpoints ──────────────────────────────────────────────────────────────────────────

  upsertEndpoint(ip: string, ep: EndpointMapValue): void {
    const value = endpointInfo.encode({
      ifindex: ep.ifindex,
      sec_identity: ep.identity,
      endpoint_id: ep.endpointId,
      flags: (ep.ingressEnforced ? 1 : 0) | (ep.egressEnforced ? 2 : 0),
      reserved_0: 0,
      reserved_1: 0,
    });
    native().mapUpdate(this.#fd(ENDPOINTS_MAP), endpointKey.encode({ addr: ipv4ToNumber(ip) }), value, 0);
  }

  deleteEndpoint(ip: string): boolean {
    return native().mapDelete(this.#fd(ENDPOINTS_MAP), endpointKey.encode({ addr: ipv4ToNumber(ip) }));
  }

  dumpEndpoints(): Map<string, EndpointMapValue> {
    const out = new Map<string, EndpointMapValue>();
    this.#dump(ENDPOINTS_MAP, endpointKey.size, endpointInfo.size, (k, v) => {
      const info = endpointInfo.decode(v);
      out.set(numberToIpv4(endpointKey.decode(k).addr), {
        ifindex: info.ifindex,
        identity: info.sec_identity,
        endpointId: info.endpoint_id,
        ingressEnforced: (info.flags & 1) !== 0,
        egressEnforced: (info.flags & 2) !== 0,
      });
    });
    return out;
  }

  // ── policy ─────────────────────────────────────────────────────────────────────────────

  /**
   * The policy map's current entries by endpoint, read in one pass, for a round of
   * syncEndpointPolicy calls (each would otherwise read the whole map again).
   */
  policySnapshot(): PolicySnapshot {
    const byEndpoint: PolicySnapshot = new Map();
    this.#dump(POLICY_MAP, policyKey.size, policyEntry.size, (k, v) => {
      const id = policyKey.decode(k).endpoint_id;
      let entries = byEndpoint.get(id);
      if (!entries) byEndpoint.set(id, (entries = new Map()));
      entries.set(hex(k), { key: k.slice(), valueHex: hex(v) });
    });
    return byEndpoint;
  }

  /**
   * The snapshot `syncEndpointPolicy` would read for an endpoint whose map entries are known to be
   * exactly `entries` (what the agent last wrote), built without reading the map: an incremental
   * update then costs only the writes that differ.
   */
  snapshotOf(endpointId: number, entries: readonly PolicyMapEntry[]): PolicySnapshot {
    const mine = new Map<string, { key: Uint8Array; valueHex: string }>();
    for (const entry of entries) {
      const { key, value } = encodePolicyEntry({ ...entry, endpointId });
      mine.set(hex(key), { key, valueHex: hex(value) });
    }
    return new Map([[endpointId, mine]]);
  }

  /**
   * Makes the policy entries of one endpoint equal to `desired`. Additions and changes are
   * written before stale entries are removed, so a flow allowed by both the old and the new
   * policy is never dropped in between. `snapshot` is the map as read before (policySnapshot).
   * With `deferred`, the stale entries' deletes are appended there instead of done (and not counted).
   */
  syncEndpointPolicy(endpointId: number, desired: readonly PolicyMapEntry[], snapshot = this.policySnapshot(), deferred?: DeferredDeletes): { upserted: number; deleted: number } {
    const fd = this.#fd(POLICY_MAP);
    const current = snapshot.get(endpointId) ?? new Map<string, { key: Uint8Array; valueHex: string }>();
    const keys: Uint8Array[] = [];
    const values: Uint8Array[] = [];
    const wanted = new Set<string>();
    for (const entry of desired) {
      const { key, value } = encodePolicyEntry({ ...entry, endpointId });
      const kh = hex(key);
      wanted.add(kh);
      if (current.get(kh)?.valueHex !== hex(value)) {
        keys.push(key);
        values.push(value);
      }
    }
    if (keys.length) native().mapUpdateBatch(fd, Buffer.concat(keys), Buffer.concat(values), keys.length);
    let deleted = 0;
    for (const [kh, { key }] of current) {
      if (wanted.has(kh)) continue;
      if (deferred) {
        deferred.push(() => native().mapDelete(fd, key));
        continue;
      }
      native().mapDelete(fd, key);
      deleted++;
    }
    return { upserted: keys.length, deleted };
  }

  /**
   * Writes what changed in one endpoint's policy entries when the caller knows it exactly (the
   * entries it last wrote): `upserts` in one batch first, then the keys of `deletes` that no upsert
   * rewrote. Costs the change, not the endpoint's entries. With `deferred`, as syncEndpointPolicy.
   */
  writeEndpointPolicy(endpointId: number, upserts: readonly PolicyMapEntry[], deletes: readonly PolicyMapEntry[], deferred?: DeferredDeletes): { upserted: number; deleted: number } {
    const fd = this.#fd(POLICY_MAP);
    const written = new Set<string>();
    const keys: Uint8Array[] = [];
    const values: Uint8Array[] = [];
    for (const entry of upserts) {
      const { key, value } = encodePolicyEntry({ ...entry, endpointId });
      written.add(hex(key));
      keys.push(key);
      values.push(value);
    }
    if (keys.length) native().mapUpdateBatch(fd, Buffer.concat(keys), Buffer.concat(values), keys.length);
    let deleted = 0;
    for (const entry of deletes) {
      const { key } = encodePolicyEntry({ ...entry, endpointId });
      if (written.has(hex(key))) continue;
      if (deferred) deferred.push(() => native().mapDelete(fd, key));
      else if (native().mapDelete(fd, key)) deleted++;
    }
    return { upserted: keys.length, deleted };
  }

  dumpPolicy(): { endpointId: number; egress: boolean; identity: number; protocol: number; port: number; prefixLen: number; deny: boolean; proxyPort: number }[] {
    const out: ReturnType<Datapath['dumpPolicy']> = [];
    this.#dump(POLICY_MAP, policyKey.size, policyEntry.size, (k, v) => {
      const key = policyKey.decode(k);
      const val = policyEntry.decode(v);
      out.push({
        endpointId: key.endpoint_id,
        egress: key.egress === 1,
        identity: key.sec_identity,
        protocol: key.protocol,
        port: key.dport,
        prefixLen: val.port_prefix_len,
        deny: (val.flags & 1) !== 0,
        proxyPort: val.proxy_port,
      });
    });
    return out;
  }

  // ── conntrack, metrics, events ─────────────────────────────────────────────────────────

  dumpConntrack(): CtEntryView[] {
    const out: CtEntryView[] = [];
    this.#dump(CT_MAP, ctKey.size, ctEntry.size, (k, v) => out.push(ctView(ctKey.decode(k), ctEntry.decode(v))));
    return out;
  }

  /**
   * Cilium's conntrack GC: deletes the entries that expired (the programs already treat them as
   * absent) and returns the live ones. An entry is read again before its delete: one a packet
   * renewed in between (a new connection on the same tuple) stays.
   */
  gcConntrack(now = ctNow()): { live: CtEntryView[]; deleted: number } {
    // The programs read the coarse clock, which may trail this one by a tick: an entry that
    // expires this very second may still be live for them.
    const expired = (e: CtEntryView): boolean => e.expires < now - 1;
    const fd = this.#fd(CT_MAP);
    const live: CtEntryView[] = [];
    const doomed: Uint8Array[] = [];
    this.#dump(CT_MAP, ctKey.size, ctEntry.size, (k, v) => {
      const e = ctView(ctKey.decode(k), ctEntry.decode(v));
      if (expired(e)) doomed.push(k.slice());
      else live.push(e);
    });
    let deleted = 0;
    for (const key of doomed) {
      const v = native().mapLookup(fd, key, ctEntry.size);
      if (v === null) continue;
      const e = ctView(ctKey.decode(key), ctEntry.decode(v));
      if (!expired(e)) {
        live.push(e);
        continue;
      }
      if (native().mapDelete(fd, key)) deleted++;
    }
    return { live, deleted };
  }

  /**
   * Deletes every conntrack entry to or from one of `ips` (Cilium scrubs a removed endpoint's
   * addresses this way, so a pod that gets the address later inherits no connection). Returns how
   * many went. One pass over the map (at most its 65,536 entries, bpf/lib/conntrack.h), whatever the number of `ips`.
   */
  scrubConntrack(ips: ReadonlySet<string>): { deleted: number } {
    const addrs = new Set([...ips].map(ipv4ToNumber));
    const fd = this.#fd(CT_MAP);
    const doomed: Uint8Array[] = [];
    // Compared as numbers, from the key alone: no entry view (strings) per entry.
    this.#dump(CT_MAP, ctKey.size, ctEntry.size, (k) => {
      const key = ctKey.decode(k);
      if (addrs.has(key.saddr) || addrs.has(key.daddr)) doomed.push(k.slice());
    });
    let deleted = 0;
    for (const key of doomed) if (native().mapDelete(fd, key)) deleted++;
    return { deleted };
  }

  /**
   * Every non-zero packet counter, summed over CPUs: reason 0 forwarded, otherwise the drop
   * reason (src/codes), by direction. One BPF_MAP_LOOKUP_BATCH of the whole per-CPU array: a
   * scrape costs one syscall, not one lookup per slot.
   */
  readCounters(): MetricsCounter[] {
    const cpus = native().numPossibleCpus();
    // The kernel copies each CPU's value rounded up to 8 bytes (bpf_long_memcpy).
    const stride = Math.ceil(metricsValue.size / 8) * 8;
    const { keys, values, count } = native().mapLookupBatch(this.#fd(METRICS_MAP), 4, stride * cpus, METRICS_ENTRIES);
    const keyView = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
    const view = new DataView(values.buffer, values.byteOffset, values.byteLength);
    const out: MetricsCounter[] = [];
    for (let i = 0; i < count; i++) {
      // Most slots are zero on every CPU: test the words before paying for BigInt sums.
      let any = false;
      for (let cpu = 0; cpu < cpus && !any; cpu++) {
        const at = (i * cpus + cpu) * stride;
        any = view.getUint32(at, true) !== 0 || view.getUint32(at + 4, true) !== 0;
      }
      if (!any) continue;
      let packets = 0n;
      let bytes = 0n;
      for (let cpu = 0; cpu < cpus; cpu++) {
        const v = metricsValue.decode(values, (i * cpus + cpu) * stride);
        packets += v.packets;
        bytes += v.bytes;
      }
      const index = keyView.getUint32(i * 4, true);
      const dir = Math.floor(index / METRICS_REASON_MAX);
      out.push({
        reason: index % METRICS_REASON_MAX,
        direction: dir === EVENT_DIRECTION.ingress ? 'INGRESS' : dir === EVENT_DIRECTION.egress ? 'EGRESS' : 'UNKNOWN',
        packets,
        bytes,
      });
    }
    return out;
  }

  /** Packet counters summed over CPUs and directions: slot 0 forwarded, other slots by drop reason. */
  readMetrics(): Map<number, { packets: bigint; bytes: bigint }> {
    const out = new Map<number, { packets: bigint; bytes: bigint }>();
    for (const c of this.readCounters()) {
      const sum = out.get(c.reason);
      out.set(c.reason, { packets: (sum?.packets ?? 0n) + c.packets, bytes: (sum?.bytes ?? 0n) + c.bytes });
    }
    return out;
  }

  /**
   * Entries and capacity of the maps that fill up (ipcache, endpoints, policy, conntrack): what
   * Cilium's `cilium_bpf_map_pressure{map_name}` is the ratio of. Hash maps are counted by batch
   * lookups; the LPM ipcache, which has no batch operations, by walking its keys. A full read:
   * callers cache it (src/metrics refreshes it at most every 10 s).
   */
  mapPressure(): MapPressure[] {
    const n = native();
    return [IPCACHE_MAP, ENDPOINTS_MAP, POLICY_MAP, CT_MAP].map((name) => {
      const fd = this.#fd(name);
      const info = n.mapInfo(fd);
      let entries: number;
      try {
        entries = n.mapLookupBatch(fd, info.keySize, info.valueSize, info.maxEntries).count;
      } catch {
        entries = n.mapDump(fd, info.keySize, info.valueSize).count;
      }
      return { mapName: name, entries, maxEntries: info.maxEntries };
    });
  }

  /** Delivers every event the programs emit until the returned function is called. */
  onEvents(listener: (event: FlowEvent) => void, onMalformed?: (record: Uint8Array) => void): () => void {
    const handle = native().ringbufOpen(this.#fd(EVENTS_MAP), (records) => {
      for (const r of records) {
        if (r.length < flowEvent.size) {
          onMalformed?.(r);
          continue;
        }
        listener(flowEvent.decode(r));
      }
    });
    this.#ringbufs.add(handle);
    return () => {
      if (this.#ringbufs.delete(handle)) native().ringbufClose(handle);
    };
  }

  #dump(name: string, keySize: number, valueSize: number, each: (k: Uint8Array, v: Uint8Array) => void): void {
    const { keys, values, count } = native().mapDump(this.#fd(name), keySize, valueSize);
    for (let i = 0; i < count; i++) {
      each(keys.subarray(i * keySize, (i + 1) * keySize), values.subarray(i * valueSize, (i + 1) * valueSize));
    }
  }

  /** Closes our fds; pinned maps, programs and links stay in the kernel and keep enforcing. */
  close(): void {
    const n = native();
    for (const h of this.#ringbufs) n.ringbufClose(h);
    this.#ringbufs.clear();
    for (const fd of this.#maps.values()) n.closeFd(fd);
    this.#maps.clear();
    if (this.#obj) n.closeObject(this.#obj);
    this.#obj = null;
  }
}

function ctView(key: ReturnType<typeof ctKey.decode>, e: ReturnType<typeof ctEntry.decode>): CtEntryView {
  return {
    saddr: numberToIpv4(key.saddr),
    daddr: numberToIpv4(key.daddr),
    sport: key.sport,
    dport: key.dport,
    protocol: key.protocol,
    direction: key.flags === 1 ? 'egress' : 'ingress',
    packets: e.packets,
    srcIdentity: e.src_identity,
    proxyPort: e.proxy_port,
    flags: e.flags,
    expires: e.expires,
  };
}

/**
 * A membrane_metrics pinned by an agent from before the counters were keyed by direction (256
 * entries, not METRICS_ENTRIES) would make the object fail to load (libbpf refuses to reuse a pin
 * of another size): its pin is removed so a new map is made. Only counters start over; the
 * programs still attached keep counting into the old map until their links are replaced.
 */
function retireStaleMetricsPin(pinRoot: string): void {
  const path = join(pinRoot, METRICS_MAP);
  if (!existsSync(path)) return;
  const n = native();
  const fd = n.objGet(path);
  try {
    if (n.mapInfo(fd).maxEntries !== METRICS_ENTRIES) rmSync(path);
  } finally {
    n.closeFd(fd);
  }
}

/**
 * Removes every pin under a pin root: maps, links (which detaches the programs) and the
 * directory itself. Used by `membrane lab down` and test teardown, never by a restart.
 */
export function removePins(pinRoot: string): void {
  rmSync(pinRoot, { recursive: true, force: true });
}

function normalisePrefix(prefix: string): string {
  const p = parseIpv4Prefix(prefix);
  return `${numberToIpv4(p.base)}/${p.bits}`;
}

/** `a.b.c.d/len` (or a bare address, /32) → the masked base address, prefix length and mask. */
export function parseIpv4Prefix(prefix: string): { base: number; bits: number; mask: number } {
  const [ip = '', lenText] = prefix.split('/');
  const bits = lenText === undefined ? 32 : Number(lenText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) {
    throw membraneError('MEMBRANE_ERR_DATAPATH_CODEC', `bad prefix length in ${prefix}`);
  }
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (ipv4ToNumber(ip) & mask) >>> 0, bits, mask };
}

function encodeIpcacheKey(prefix: string): { key: Uint8Array } {
  const p = parseIpv4Prefix(prefix);
  return { key: ipcacheKey.encode({ lpm_key: p.bits, addr: p.base }) };
}
