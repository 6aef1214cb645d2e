/**
 * Fixed-layout struct codecs for map keys, values and events.
 *
 * Each layout lists its fields with offsets exactly as the C struct in bpf/lib/*.h has them
 * (padding written out as reserved fields); test/unit/datapath/layout.test.ts checks every
 * layout against the BTF of the built object, so the two definitions cannot drift apart.
 * Byte order is part of the field type: `be16`/`be32` fields are network order in memory
 * and host order in JS.
 */
import { membraneError } from '../errors/index.js';

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'be32';

const SIZES: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be16: 2, be32: 4 };
const MAX: Record<FieldType, number | bigint> = {
  u8: 0xff,
  u16: 0xffff,
  u32: 0xffffffff,
  u64: 0xffffffffffffffffn,
  be16: 0xffff,
  be32: 0xffffffff,
};

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
}

export interface StructLayout<T> {
  /** The C struct name, for the BTF check. */
  readonly cName: string;
  readonly size: number;
  readonly fields: readonly FieldSpec[];
  encode(value: T, into?: Uint8Array, at?: number): Uint8Array;
  decode(bytes: Uint8Array, at?: number): T;
}

type FieldValue<F extends FieldType> = F extends 'u64' ? bigint : number;
export type StructOf<S extends Record<string, FieldType>> = { [K in keyof S]: FieldValue<S[K]> };

export function fieldSize(type: FieldType): number {
  return SIZES[type];
}

/**
 * Defines a layout from fields in declaration order, with C alignment rules; the result's
 * offsets are what the BTF check compares.
 */
export function defineStruct<S extends Record<string, FieldType>>(cName: string, spec: S): StructLayout<StructOf<S>> {
  const fields: FieldSpec[] = [];
  let offset = 0;
  let align = 1;
  for (const [name, type] of Object.entries(spec)) {
    const size = SIZES[type];
    offset = Math.ceil(offset / size) * size;
    fields.push({ name, type, offset });
    offset += size;
    align = Math.max(align, size);
  }
  const size = Math.ceil(offset / align) * align;

  function encode(value: StructOf<S>, into?: Uint8Array, at = 0): Uint8Array {
    const out = into ?? new Uint8Array(size);
    if (out.length < at + size) throw new RangeError(`${cName}: buffer of ${out.length} bytes is too short`);
    const view = new DataView(out.buffer, out.byteOffset + at, size);
    for (const f of fields) {
      const v = (value as Record<string, number | bigint>)[f.name] ?? (f.type === 'u64' ? 0n : 0);
      writeField(view, f, v, cName);
    }
    return out;
  }

  function decode(bytes: Uint8Array, at = 0): StructOf<S> {
    if (bytes.length < at + size) {
      throw new RangeError(`${cName}: need ${size} bytes at offset ${at}, have ${bytes.length - at}`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, size);
    const result: Record<string, number | bigint> = {};
    for (const f of fields) result[f.name] = readField(view, f);
    return result as StructOf<S>;
  }

  return { cName, size, fields, encode, decode };
}

function writeField(view: DataView, f: FieldSpec, v: number | bigint, cName: string): void {
  if (f.type === 'u64') {
    const b = BigInt(v);
    if (b < 0n || b > (MAX.u64 as bigint)) throw rangeError(cName, f, v);
    view.setBigUint64(f.offset, b, true);
    return;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > (MAX[f.type] as number)) throw rangeError(cName, f, v);
  switch (f.type) {
    case 'u8':
      view.setUint8(f.offset, n);
      break;
    case 'u16':
      view.setUint16(f.offset, n, true);
      break;
    case 'u32':
      view.setUint32(f.offset, n, true);
      break;
    case 'be16':
      view.setUint16(f.offset, n, false);
      break;
    case 'be32':
      view.setUint32(f.offset, n, false);
      break;
  }
}

function readField(view: DataView, f: FieldSpec): number | bigint {
  switch (f.type) {
    case 'u8':
      return view.getUint8(f.offset);
    case 'u16':
      return view.getUint16(f.offset, true);
    case 'u32':
      return view.getUint32(f.offset, true);
    case 'u64':
      return view.getBigUint64(f.offset, true);
    case 'be16':
      return view.getUint16(f.offset, false);
    case 'be32':
      return view.getUint32(f.offset, false);
  }
}

function rangeError(cName: string, f: FieldSpec, v: number | bigint): Error {
  return membraneError('MEMBRANE_ERR_DATAPATH_CODEC', `${cName}.${f.name} (${f.type}) cannot hold ${String(v)}`);
}

/** Host-order IPv4 number ↔ dotted quad. */
export function ipv4ToNumber(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw membraneError('MEMBRANE_ERR_DATAPATH_CODEC', `not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    const octet = Number(p);
    if (!/^\d{1,3}$/.test(p) || octet > 255) throw membraneError('MEMBRANE_ERR_DATAPATH_CODEC', `not an IPv4 address: ${ip}`);
    n = n * 256 + octet;
  }
  return n;
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}
