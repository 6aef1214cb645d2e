/**
 * The `world:` section of a lab spec: a network outside the cluster (not an endpoint, so its
 * addresses have Cilium's `reserved:world` identity), one namespace reached from the pods
 * through the agent's node namespace. It serves HTTPS on 443 (HTTP/2 via ALPN, HTTP/1.1 too)
 * with a certificate for every site's host from a lab CA, and plain HTTP on 80, which redirects
 * to HTTPS as public sites do.
 *
 *   world:
 *     name: world                      # the network namespace (a DNS label, ≤ 12 characters)
 *     addresses: ["10.78.200.10", …]   # <subnet>.X.Y with X in 100–254: outside the pods' /24s
 *     sites:
 *       - {host: api.github.com, status: 200}
 *       - {host: support.github.com, status: 302, location: "https://support.github.com/contact"}
 *
 * The namespace is joined to the node namespace by a veth on <subnet>.255.0/30 (node .1,
 * world .2); the node namespace routes each world address to it.
 */
import { isDnsName, ipv4Octets } from './spec-names.js';

export interface WorldSite {
  /** Host name (SNI, :authority or Host) the site answers for. */
  readonly host: string;
  /** Status of every HTTPS answer, e.g. 200 or 302. */
  readonly status: number;
  /** Location header of a redirect. */
  readonly location?: string;
}

export interface LabWorld {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly sites: readonly WorldSite[];
}

/** Third octet of the node ↔ world link (<subnet>.255.0/30). */
export const WORLD_LINK_OCTET = 255;
/** World addresses take third octets from here to 254; pods use 1 up to their count. */
export const WORLD_FIRST_OCTET = 100;

export function worldLink(subnet: string): { node: string; world: string } {
  return { node: `${subnet}.${WORLD_LINK_OCTET}.1`, world: `${subnet}.${WORLD_LINK_OCTET}.2` };
}

/** Node-side interface of the world link: at most 15 characters, one per lab. */
export function worldIfname(labName: string): string {
  return `mw-${labName}`.slice(0, 15);
}

type Bad = (path: string, why: string) => never;

export function parseWorld(raw: unknown, subnet: string, podNames: readonly string[], bad: Bad): LabWorld {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('spec.world', 'must be a mapping with name, addresses and sites');
  const w = raw as Record<string, unknown>;
  const name = w.name ?? 'world';
  if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/.test(name)) bad('spec.world.name', 'must be a DNS label of at most 12 characters');
  if (podNames.includes(name as string)) bad('spec.world.name', `${String(name)} is also a pod name`);
  if (!Array.isArray(w.addresses) || w.addresses.length === 0) bad('spec.world.addresses', 'must list at least one address');
  const addresses = (w.addresses as unknown[]).map((ip, i) => {
    const o = ipv4Octets(ip);
    if (!o || `${o[0]}.${o[1]}` !== subnet || o[2] < WORLD_FIRST_OCTET || o[2] >= WORLD_LINK_OCTET || o[3] < 1 || o[3] > 254) {
      bad(`spec.world.addresses[${i}]`, `${String(ip)} is not a world address: must be ${subnet}.X.Y with X in ${WORLD_FIRST_OCTET}–${WORLD_LINK_OCTET - 1} and Y in 1–254`);
    }
    return ip as string;
  });
  const dup = addresses.find((a, i) => addresses.indexOf(a) !== i);
  if (dup) bad('spec.world.addresses', `${dup} is listed twice`);
  if (!Array.isArray(w.sites) || w.sites.length === 0) bad('spec.world.sites', 'must list at least one site');
  const sites = (w.sites as unknown[]).map((s, i): WorldSite => {
    const at = `spec.world.sites[${i}]`;
    const site = (typeof s === 'object' && s !== null ? s : {}) as Record<string, unknown>;
    if (!isDnsName(site.host)) bad(`${at}.host`, 'must be a lower-case DNS name');
    const status = site.status ?? 200;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) bad(`${at}.status`, 'must be an HTTP status from 200 to 599');
    if (site.location !== undefined && (typeof site.location !== 'string' || !/^https?:\/\/\S+$/.test(site.location))) {
      bad(`${at}.location`, 'must be an absolute http(s) URL');
    }
    if ((status as number) >= 300 && (status as number) < 400 && site.location === undefined) bad(`${at}.location`, `a ${String(status)} redirect needs a location`);
    return { host: site.host as string, status: status as number, ...(typeof site.location === 'string' ? { location: site.location } : {}) };
  });
  const dupHost = sites.find((s, i) => sites.findIndex((t) => t.host === s.host) !== i);
  if (dupHost) bad('spec.world.sites', `${dupHost.host} is listed twice`);
  return { name: name as string, addresses, sites };
}
