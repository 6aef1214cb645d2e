/**
 * The `dns:` section of a pod's `serve: {app: dns}`: the records the lab's DNS server (dnsmasq)
 * answers from its configuration, never by asking another server.
 *
 *   serve:
 *     app: dns
 *     port: 53
 *     dns:
 *       ttl: 60                                  # default TTL of every record, seconds
 *       zones: [github.com, cluster.local]       # unknown names here answer NXDOMAIN
 *       logQueries: true                         # one log line per query (off for benchmarks)
 *       records:
 *         - {name: api.github.com, a: ["10.78.200.11", "10.78.200.12"]}
 *         - {name: support.github.com, cname: github-support.edge.example.net, ttl: 30}
 *
 * A names outside every zone answer REFUSED (there is no upstream). Each A address must be an
 * address of the lab (a pod's or the world's): answers never point outside the lab. A CNAME's
 * target must itself be a record of the spec (dnsmasq answers CNAMEs to local names only) and
 * every chain must end in A records.
 */
import { isDnsName, ipv4Octets } from './spec-names.js';

export interface DnsRecord {
  readonly name: string;
  /** A records, several for one name allowed. Exactly one of `a` and `cname` is set. */
  readonly a?: readonly string[];
  readonly cname?: string;
  /** Seconds. */
  readonly ttl: number;
}

export interface LabDns {
  readonly zones: readonly string[];
  /** dnsmasq's log-queries: every query in the pod's server log (default true). */
  readonly logQueries: boolean;
  readonly records: readonly DnsRecord[];
}

/** Cilium's DNS proxy keeps at least --tofqdns-min-ttl; 60 s is what many public names use. */
export const DEFAULT_DNS_TTL = 60;
const MAX_TTL = 2 ** 31 - 1;

type Bad = (path: string, why: string) => never;

function ttlOf(raw: unknown, fallback: number, at: string, bad: Bad): number {
  if (raw === undefined) return fallback;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0 || raw > MAX_TTL) return bad(at, `must be whole seconds from 0 to ${MAX_TTL}`);
  return raw;
}

/**
 * @param labAddresses every address a record may point at (pods and world), for the check that
 *   answers stay inside the lab.
 */
export function parseDns(raw: unknown, at: string, labAddresses: ReadonlySet<string>, bad: Bad): LabDns {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(at, 'must be a mapping with records');
  const d = raw as Record<string, unknown>;
  const ttl = ttlOf(d.ttl, DEFAULT_DNS_TTL, `${at}.ttl`, bad);
  const zones = d.zones ?? [];
  if (!Array.isArray(zones)) bad(`${at}.zones`, 'must list DNS names');
  (zones as unknown[]).forEach((z, i) => {
    if (!isDnsName(z)) bad(`${at}.zones[${i}]`, 'must be a lower-case DNS name');
  });
  if (d.logQueries !== undefined && typeof d.logQueries !== 'boolean') bad(`${at}.logQueries`, 'must be true or false');
  if (!Array.isArray(d.records) || d.records.length === 0) bad(`${at}.records`, 'must list at least one record');
  const records = (d.records as unknown[]).map((r, i): DnsRecord => {
    const rat = `${at}.records[${i}]`;
    const rec = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    if (!isDnsName(rec.name)) bad(`${rat}.name`, 'must be a lower-case DNS name without a trailing dot');
    const recTtl = ttlOf(rec.ttl, ttl, `${rat}.ttl`, bad);
    if ((rec.a === undefined) === (rec.cname === undefined)) bad(rat, 'needs exactly one of a (addresses) and cname (a name)');
    if (rec.cname !== undefined) {
      if (!isDnsName(rec.cname)) bad(`${rat}.cname`, 'must be a lower-case DNS name');
      if (rec.cname === rec.name) bad(`${rat}.cname`, 'points at itself');
      return { name: rec.name as string, cname: rec.cname as string, ttl: recTtl };
    }
    if (!Array.isArray(rec.a) || rec.a.length === 0) bad(`${rat}.a`, 'must list at least one IPv4 address');
    const a = (rec.a as unknown[]).map((ip, j) => {
      if (!ipv4Octets(ip)) bad(`${rat}.a[${j}]`, `${String(ip)} is not an IPv4 address`);
      if (!labAddresses.has(ip as string)) bad(`${rat}.a[${j}]`, `${String(ip)} is neither a pod address nor a world address of this lab`);
      return ip as string;
    });
    return { name: rec.name as string, a, ttl: recTtl };
  });
  const byName = new Map<string, DnsRecord>();
  records.forEach((r, i) => {
    if (byName.has(r.name)) bad(`${at}.records[${i}].name`, `${r.name} has two records: list all its addresses in one`);
    byName.set(r.name, r);
  });
  records.forEach((r, i) => {
    if (r.cname !== undefined && !byName.has(r.cname)) {
      bad(`${at}.records[${i}].cname`, `${r.cname} has no record in this spec (dnsmasq answers CNAMEs to local names only)`);
    }
  });
  records.forEach((r, i) => {
    // Every target exists, so a chain longer than the records is a loop.
    let hop: DnsRecord | undefined = r;
    for (let n = 0; hop?.cname !== undefined; n++) {
      if (n > records.length) bad(`${at}.records[${i}].cname`, `the CNAME chain from ${r.name} loops`);
      hop = byName.get(hop.cname);
    }
  });
  return { zones: zones as string[], logQueries: d.logQueries !== false, records };
}
