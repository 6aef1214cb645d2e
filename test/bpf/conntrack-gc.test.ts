/**
 * issue-8 conntrack GC and scrubbing on the real map, as Cilium's: `gcConntrack` deletes the
 * entries that expired (the programs already ignore them) and returns the live ones, which keep
 * an FQDN zombie alive; `scrubConntrack` deletes a removed endpoint's connections. The programs'
 * clock (`ct_now`, seconds since boot) and `ctNow()` must agree, or a live connection would look
 * expired: an entry a real packet made through BPF_PROG_TEST_RUN is checked against it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, ctNow, removePins } from '../../src/datapath/index.js';
import { CT_MAP, ctEntry, ctKey } from '../../src/datapath/maps/conntrack.js';
import { ipv4ToNumber } from '../../src/datapath/layout.js';
import { privilegedSkipReason } from '../privileged/harness.js';
import { ipv4Packet } from './packet.js';

const skip = privilegedSkipReason();
const PIN_ROOT = '/sys/fs/bpf/mbt-bpf-ctgc';
const EP_IP = '10.219.0.2';
const EP_ID = 12;
const PEER = '10.219.9.9';
const PEER_ID = 556;
const LO_IFINDEX = 1;

describe.skipIf(skip !== null)('conntrack GC on the kernel map' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let dp: Datapath;

  beforeAll(() => {
    removePins(PIN_ROOT);
    dp = Datapath.open({ pinRoot: PIN_ROOT });
    dp.upsertEndpoint(EP_IP, { ifindex: LO_IFINDEX, identity: 301, endpointId: EP_ID, ingressEnforced: true, egressEnforced: true });
    dp.upsertIpcache(`${PEER}/32`, PEER_ID);
    dp.syncEndpointPolicy(EP_ID, [{ endpointId: EP_ID, egress: true, identity: PEER_ID, protocol: 17, port: 5353, portPrefixLen: 16, deny: false, proxyPort: 0 }]);
  });
  afterAll(() => {
    dp?.close();
    removePins(PIN_ROOT);
  });

  /** Writes an entry as the programs would, with its own expiry, through bpftool on the pin. */
  function put(saddr: string, daddr: string, sport: number, expires: number): void {
    const key = ctKey.encode({ saddr: ipv4ToNumber(saddr), daddr: ipv4ToNumber(daddr), sport, dport: 5353, protocol: 17, flags: 1, reserved_0: 0 });
    const value = ctEntry.encode({ packets: 1n, bytes: 60n, expires, src_identity: 301, proxy_port: 0, flags: 0, flags_seen: 0, last_tx_report: 1, last_rx_report: 0 });
    const hex = (b: Uint8Array): string[] => [...b].map((x) => x.toString(16).padStart(2, '0'));
    const r = spawnSync('bpftool', ['map', 'update', 'pinned', join(PIN_ROOT, CT_MAP), 'key', 'hex', ...hex(key), 'value', 'hex', ...hex(value)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  }
  const ports = (entries: readonly { sport: number }[]): number[] => entries.map((e) => e.sport).sort((a, b) => a - b);

  it('an entry a packet made expires on the clock ctNow() reads (UDP: 60 s from now)', () => {
    const before = ctNow();
    expect(dp.runProgram('from_endpoint', ipv4Packet({ src: EP_IP, dst: PEER, protocol: 17, sport: 41000, dport: 5353 }), { ifindex: LO_IFINDEX }).verdict).toBe('pass');
    const e = dp.dumpConntrack().find((x) => x.sport === 41000 && x.direction === 'egress');
    expect(e).toBeDefined();
    // The programs' coarse clock may trail by a tick: within 2 s of 60 s after now.
    expect(Math.abs(e!.expires - (before + 60))).toBeLessThanOrEqual(2);
  });

  it('gcConntrack deletes only the expired entries and returns the live ones', () => {
    const now = ctNow();
    put(EP_IP, PEER, 41001, now - 5);
    put(EP_IP, PEER, 41002, now + 600);
    put(EP_IP, '10.219.9.10', 41003, now - 3);
    put(EP_IP, '10.219.9.11', 41004, now); // this second: may still be live for the coarse clock
    const r = dp.gcConntrack();
    expect(r.deleted).toBe(2);
    expect(ports(r.live.filter((e) => e.sport >= 41001 && e.sport < 41010))).toEqual([41002, 41004]);
    expect(ports(dp.dumpConntrack().filter((e) => e.sport >= 41001 && e.sport < 41010))).toEqual([41002, 41004]);
    // Nothing expired left: a second pass deletes nothing.
    expect(dp.gcConntrack().deleted).toBe(0);
  });

  it('scrubConntrack deletes every entry to or from a removed endpoint\'s address, and only those', () => {
    const now = ctNow();
    put('10.219.0.3', PEER, 41010, now + 600);
    put(PEER, '10.219.0.3', 41011, now + 600);
    put('10.219.0.4', PEER, 41012, now + 600);
    const r = dp.scrubConntrack(new Set(['10.219.0.3']));
    expect(r.deleted).toBe(2);
    expect(ports(dp.dumpConntrack().filter((e) => e.sport >= 41010))).toEqual([41012]);
  });
});
