/**
 * Hubble's raw filter flags, `--allowlist` and `--denylist`: each value holds one or more JSON
 * `FlowFilter` objects (concatenated, as Go's json.Decoder reads them), in proto3's JSON mapping,
 * so field names may be the proto names (`source_pod`) or their JSON names (`sourcePod`). Each
 * object becomes one filter of the list: its fields AND-ed, the filters OR-ed.
 *
 * A field Membrane cannot evaluate (`source_service`, `http_header`, …) is refused naming the flag
 * and the field: answering with more flows than asked would be wrong. Unknown fields are refused
 * as protojson refuses them.
 */
import { membraneError } from '../errors/index.js';
import { compileFilterSpec } from './filters/index.js';
import type { FilterSpec } from './filters/types.js';

type Kind = 'strings' | 'numbers' | 'booleans' | 'objects';

/** FilterSpec fields, by proto name, with the JSON type of their list items. */
const FIELDS: Readonly<Record<string, Kind>> = {
  uuid: 'strings',
  source_pod: 'strings',
  destination_pod: 'strings',
  source_label: 'strings',
  destination_label: 'strings',
  source_identity: 'numbers',
  destination_identity: 'numbers',
  source_ip: 'strings',
  destination_ip: 'strings',
  source_port: 'strings',
  destination_port: 'strings',
  verdict: 'strings',
  drop_reason_desc: 'strings',
  event_type: 'objects',
  protocol: 'strings',
  http_method: 'strings',
  http_path: 'strings',
  http_url: 'strings',
  dns_query: 'strings',
  http_status_code: 'strings',
  traffic_direction: 'strings',
  reply: 'booleans',
  node_name: 'strings',
  trace_id: 'strings',
  source_fqdn: 'strings',
  destination_fqdn: 'strings',
  tcp_flags: 'objects',
  ip_version: 'strings',
};

/** FlowFilter fields of Hubble's flow.proto Membrane does not evaluate. */
const NOT_EVALUATED = new Set([
  'source_service', 'destination_service', 'source_workload', 'destination_workload', 'source_cluster_name',
  'destination_cluster_name', 'source_ip_xlated', 'http_header', 'node_labels', 'interface',
  'ip_trace_id', 'ip_trace_option', 'encrypted', 'experimental', 'source_identity_name', 'destination_identity_name',
]);

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function rawError(flag: string, text: string, detail: string): Error {
  return membraneError('MEMBRANE_ERR_CLI_USAGE', `invalid --${flag} flag: failed to decode '${text}': ${detail}`);
}

/** Splits concatenated JSON values (`{…}{…}`, whitespace between allowed) in one pass. */
function splitJson(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) out.push(text.slice(start, i + 1));
      if (depth < 0) return [text];
    } else if (depth === 0 && !/\s/.test(c ?? '')) return [text];
  }
  if (depth !== 0) return [text];
  return out;
}

function eventType(o: Record<string, unknown>): { type: number; sub_type?: number; match_sub_type?: boolean } | null {
  const type = o.type ?? 0;
  const sub = o.sub_type ?? o.subType ?? 0;
  const match = o.match_sub_type ?? o.matchSubType ?? false;
  if (typeof type !== 'number' || typeof sub !== 'number' || typeof match !== 'boolean') return null;
  return match ? { type, sub_type: sub, match_sub_type: true } : { type };
}

function toSpec(flag: string, text: string, value: unknown): FilterSpec {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw rawError(flag, text, 'a FlowFilter must be a JSON object');
  const spec: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    const field = snake(key);
    if (NOT_EVALUATED.has(field)) {
      throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--${flag}: FlowFilter.${field} is not supported by Membrane's observer (answering with more flows than asked would be wrong)`);
    }
    const kind = FIELDS[field];
    if (kind === undefined) throw rawError(flag, text, `unknown field ${JSON.stringify(key)}`);
    if (raw === null) continue;
    if (!Array.isArray(raw)) throw rawError(flag, text, `${key}: expected a list`);
    const items = raw.map((item: unknown) => {
      if (field === 'event_type') return item !== null && typeof item === 'object' ? eventType(item as Record<string, unknown>) : null;
      if (field === 'tcp_flags') {
        if (item === null || typeof item !== 'object') return null;
        const flags = item as Record<string, unknown>;
        return Object.values(flags).every((b) => typeof b === 'boolean') ? flags : null;
      }
      const want = kind === 'strings' ? 'string' : kind === 'numbers' ? 'number' : 'boolean';
      return typeof item === want ? item : null;
    });
    if (items.some((i) => i === null)) throw rawError(flag, text, `${key}: a value has the wrong type`);
    if (items.length > 0) spec[field] = items;
  }
  return spec as FilterSpec;
}

/**
 * The FlowFilters of every `--allowlist` (or `--denylist`) value, in order. Errors
 * (MEMBRANE_ERR_CLI_USAGE) name the flag: bad JSON, an unknown or unsupported field, a value
 * that cannot be matched.
 */
export function rawFilters(flag: 'allowlist' | 'denylist', values: readonly string[]): FilterSpec[] {
  const out: FilterSpec[] = [];
  for (const text of values) {
    for (const part of splitJson(text)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(part);
      } catch (err) {
        throw rawError(flag, text, (err as Error).message);
      }
      const spec = toSpec(flag, text, parsed);
      try {
        compileFilterSpec(spec);
      } catch (err) {
        throw rawError(flag, text, (err as Error).message);
      }
      out.push(spec);
    }
  }
  return out;
}
