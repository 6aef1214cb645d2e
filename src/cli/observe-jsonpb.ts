/**
 * `membrane observe -o jsonpb`: each flow as Hubble prints it, the `observer.GetFlowsResponse` in
 * proto3's JSON mapping with proto field names (cilium's generated MarshalJSON: protojson with
 * UseProtoNames) written through Go's json.Encoder. So, as `hubble observe -o jsonpb`:
 *
 * - fields in .proto declaration order; zero scalars, zero enums and empty lists left out; a set
 *   message written even when empty; 64-bit integers as strings; enums by name;
 * - `google.protobuf.Timestamp` as RFC 3339 UTC with 0, 3, 6 or 9 fraction digits, wrapper types
 *   (`is_reply`) as their bare value;
 * - `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`… (encoding/json's HTML escaping).
 *
 * Driven by the descriptors of api/v1 (the protos the agent serves), loaded once.
 */
import { join } from 'node:path';
import type { Flow } from '../observe/index.js';

type Obj = Record<string, unknown>;

interface FieldDesc {
  name: string;
  label: string;
  type: string;
  typeName: string;
  proto3Optional?: boolean;
}
interface Definitions {
  [name: string]: { format?: string; type?: { field?: FieldDesc[]; value?: { name: string; number: number }[] } };
}

const LONGS = new Set(['TYPE_INT64', 'TYPE_UINT64', 'TYPE_SINT64', 'TYPE_FIXED64', 'TYPE_SFIXED64']);
const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `google.protobuf.${n}`));

/** encoding/json's HTML-safe escaping of the marshalled text. */
function htmlEscape(s: string): string {
  return s.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** protojson's Timestamp: UTC, fraction of 0, 3, 6 or 9 digits. */
function timestampText(ts: Obj): string {
  const seconds = Number(ts.seconds ?? 0);
  const nanos = Number(ts.nanos ?? 0);
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  let frac = '';
  if (nanos !== 0) {
    const digits = String(nanos).padStart(9, '0');
    frac = `.${nanos % 1_000_000 === 0 ? digits.slice(0, 3) : nanos % 1000 === 0 ? digits.slice(0, 6) : digits}`;
  }
  return JSON.stringify(`${base}${frac}Z`);
}

export class ProtoJson {
  readonly #defs: Definitions;

  constructor(defs: Definitions) {
    this.#defs = defs;
  }

  /** The definition key `name` refers to from inside `scope` (a message's full name), as protobuf scopes names. */
  #resolve(scope: string, name: string): string {
    if (name.startsWith('.')) return name.slice(1);
    const parts = scope.split('.');
    for (let i = parts.length; i >= 0; i--) {
      const candidate = [...parts.slice(0, i), name].join('.');
      if (this.#defs[candidate]) return candidate;
    }
    return name;
  }

  #enumName(typeKey: string, value: unknown): string {
    if (typeof value === 'string') return value;
    const hit = this.#defs[typeKey]?.type?.value?.find((v) => v.number === value);
    return hit ? hit.name : String(value);
  }

  #isZero(scope: string, f: FieldDesc, v: unknown): boolean {
    switch (f.type) {
      case 'TYPE_MESSAGE':
        return false;
      case 'TYPE_ENUM': {
        const zero = this.#defs[this.#resolve(scope, f.typeName)]?.type?.value?.find((x) => x.number === 0)?.name;
        return v === 0 || v === zero;
      }
      case 'TYPE_STRING':
        return v === '';
      case 'TYPE_BOOL':
        return v === false;
      case 'TYPE_BYTES':
        return (v as Uint8Array).length === 0;
      default:
        return Number(v) === 0;
    }
  }

  #value(scope: string, f: FieldDesc, v: unknown): string {
    switch (f.type) {
      case 'TYPE_MESSAGE': {
        const key = this.#resolve(scope, f.typeName);
        if (key === 'google.protobuf.Timestamp') return timestampText(v as Obj);
        if (WRAPPERS.has(key)) {
          const inner = this.#defs[key]?.type?.field?.[0];
          const raw = (v as Obj).value;
          if (!inner) return 'null';
          return this.#value(key, inner, raw ?? (inner.type === 'TYPE_BOOL' ? false : inner.type === 'TYPE_STRING' ? '' : 0));
        }
        return this.message(key, v as Obj);
      }
      case 'TYPE_ENUM':
        return JSON.stringify(this.#enumName(this.#resolve(scope, f.typeName), v));
      case 'TYPE_STRING':
        return JSON.stringify(v);
      case 'TYPE_BOOL':
        return v ? 'true' : 'false';
      case 'TYPE_BYTES':
        return JSON.stringify(Buffer.from(v as Uint8Array).toString('base64'));
      case 'TYPE_DOUBLE':
      case 'TYPE_FLOAT': {
        const n = Number(v);
        return Number.isFinite(n) ? JSON.stringify(n) : JSON.stringify(Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity');
      }
      default:
        return LONGS.has(f.type) ? JSON.stringify(String(v)) : String(Number(v));
    }
  }

  /** A message object (proto field names) of type `typeKey` → proto3 JSON text. */
  message(typeKey: string, obj: Obj): string {
    const fields = this.#defs[typeKey]?.type?.field ?? [];
    const out: string[] = [];
    for (const f of fields) {
      const v = obj[f.name];
      if (v === undefined || v === null) continue;
      let text: string;
      if (f.label === 'LABEL_REPEATED') {
        if (!Array.isArray(v) || v.length === 0) continue;
        text = `[${v.map((x) => this.#value(typeKey, f, x)).join(',')}]`;
      } else {
        if (!f.proto3Optional && this.#isZero(typeKey, f, v)) continue;
        text = this.#value(typeKey, f, v);
      }
      out.push(`${JSON.stringify(f.name)}:${text}`);
    }
    return `{${out.join(',')}}`;
  }
}

let loaded: ProtoJson | null = null;

async function protoJson(): Promise<ProtoJson> {
  if (loaded) return loaded;
  const protoLoader = await import('@grpc/proto-loader');
  const { protoRoot, PROTO_LOADER_OPTIONS } = await import('../hubble/index.js');
  const root = protoRoot();
  const defs = protoLoader.loadSync(join(root, 'observer', 'observer.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [root] }) as unknown as Definitions;
  loaded = new ProtoJson(defs);
  return loaded;
}

/** A message object of `typeKey` (e.g. `flow.FlowFilter`) → its proto3 JSON as Go's json.Marshal writes it. */
export async function protoJsonOf(typeKey: string): Promise<(obj: Obj) => string> {
  const pj = await protoJson();
  return (obj) => htmlEscape(pj.message(typeKey, obj));
}

/** The `-o jsonpb` line of one flow (no newline). Loads the protos on first use. */
export async function jsonpbEncoder(): Promise<(flow: Flow) => string> {
  const pj = await protoJson();
  const { flowToProto } = await import('../hubble/index.js');
  return (flow) => {
    const pb = flowToProto(flow);
    return htmlEscape(pj.message('observer.GetFlowsResponse', { flow: pb, node_name: flow.node_name, time: pb.time }));
  };
}
