/**
 * One definition of each shared layout: the TypeScript codecs in src/datapath/maps/*.ts must
 * agree, field by field, with the C structs in bpf/lib/*.h as the compiler laid them out
 * (read back from the BTF of the built object). The code tables are checked against their headers
 * in test/unit/codes.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ipcacheKey, ipcacheValue } from '../../../src/datapath/maps/ipcache.js';
import { endpointInfo, endpointKey } from '../../../src/datapath/maps/endpoints.js';
import { encodePolicyEntry, policyEntry, policyKey } from '../../../src/datapath/maps/policy.js';
import { ctEntry, ctKey } from '../../../src/datapath/maps/conntrack.js';
import { fragKey, fragL4 } from '../../../src/datapath/maps/frag.js';
import { flowEvent } from '../../../src/datapath/maps/events.js';
import { metricsValue } from '../../../src/datapath/maps/metrics.js';
import { fieldSize, type StructLayout } from '../../../src/datapath/layout.js';
import { fromProxyMark, identityFromMark } from '../../../src/datapath/marks.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
}

const btf = JSON.parse(
  execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', `${root}bpf/build/layouts.o`], { encoding: 'utf8' }),
) as { types: BtfType[] };
const byId = new Map(btf.types.map((t) => [t.id, t]));

function sizeOf(id: number): number {
  let t = byId.get(id);
  while (t && (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE')) t = byId.get(t.type_id ?? -1);
  if (!t?.size) throw new Error(`no size for BTF type ${id}`);
  return t.size;
}

const layouts: StructLayout<never>[] = [
  ipcacheKey, ipcacheValue, endpointKey, endpointInfo, policyKey, policyEntry, ctKey, ctEntry, fragKey, fragL4, flowEvent, metricsValue,
] as unknown as StructLayout<never>[];

describe('map layouts match the C structs (BTF)', () => {
  for (const layout of layouts) {
    it(`struct ${layout.cName}`, () => {
      const c = btf.types.find((t) => t.kind === 'STRUCT' && t.name === layout.cName);
      expect(c, `struct ${layout.cName} in BTF`).toBeDefined();
      expect(layout.size).toBe(c?.size);
      const cFields = (c?.members ?? []).map((m) => ({ name: m.name, offset: m.bits_offset / 8, size: sizeOf(m.type_id) }));
      const tsFields = layout.fields.map((f) => ({ name: f.name, offset: f.offset, size: fieldSize(f.type) }));
      expect(tsFields).toEqual(cFields);
    });
  }
});

describe('codecs', () => {
  it('round-trip, also at an offset inside a bigger buffer, and refuse short input', () => {
    const value = { saddr: 0x0a4d0102, daddr: 0x0a4d0302, sport: 40000, dport: 80, protocol: 6, flags: 1, reserved_0: 0 };
    const bytes = ctKey.encode(value);
    expect(bytes.length).toBe(ctKey.size);
    expect(ctKey.decode(bytes)).toEqual(value);
    const big = new Uint8Array(ctKey.size + 7);
    ctKey.encode(value, big, 7);
    expect(ctKey.decode(big, 7)).toEqual(value);
    expect(() => ctKey.decode(bytes.subarray(0, 5))).toThrow(RangeError);
  });

  it('writes network-order fields big-endian and refuses values that do not fit', () => {
    const bytes = ipcacheKey.encode({ lpm_key: 32, addr: 0x0a000001 });
    expect([...bytes.subarray(4)]).toEqual([10, 0, 0, 1]);
    expect(() => policyKey.encode({ lpm_key: 80, sec_identity: 1, endpoint_id: 70000, egress: 0, protocol: 6, dport: 80, reserved_0: 0 })).toThrow(
      /cannot hold 70000/,
    );
  });

  it('encodes policy entries with the LPM prefix the C lookup expects', () => {
    const exact = encodePolicyEntry({ endpointId: 3, egress: false, identity: 256, protocol: 6, port: 80, portPrefixLen: 16, deny: false, proxyPort: 15001 });
    expect(policyKey.decode(exact.key)).toMatchObject({ lpm_key: 80, dport: 80, protocol: 6, endpoint_id: 3, sec_identity: 256 });
    expect(policyEntry.decode(exact.value)).toMatchObject({ proxy_port: 15001, flags: 0, port_prefix_len: 16 });
    const anyProto = encodePolicyEntry({ endpointId: 3, egress: true, identity: 0, protocol: 0, port: 0, portPrefixLen: 0, deny: true, proxyPort: 0 });
    expect(policyKey.decode(anyProto.key)).toMatchObject({ lpm_key: 56, egress: 1, protocol: 0 });
    expect(policyEntry.decode(anyProto.value).flags).toBe(1);
    // A port range prefix keeps only the prefix bits of the port.
    const range = encodePolicyEntry({ endpointId: 1, egress: false, identity: 0, protocol: 17, port: 0x1f93, portPrefixLen: 12, deny: false, proxyPort: 0 });
    expect(policyKey.decode(range.key)).toMatchObject({ lpm_key: 76, dport: 0x1f90 });
  });
});

describe('shared marks', () => {
  it('the proxy mark carries a 24-bit identity and the magic the programs test for', () => {
    for (const id of [1, 256, 65535, 65536, 0x123456]) {
      const mark = fromProxyMark(id);
      expect(mark & 0x0f00).toBe(0x0a00);
      expect(identityFromMark(mark)).toBe(id);
    }
    expect(() => fromProxyMark(1 << 24)).toThrow(RangeError);
  });
});
