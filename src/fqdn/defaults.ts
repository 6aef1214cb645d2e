/**
 * Cilium's defaults for the FQDN subsystem (v1.19.4 `pkg/defaults`, `pkg/fqdn/namemanager`), under
 * their flag names. See ../shared/CILIUM-FACTS.md section 1(d).
 */

/** `--tofqdns-min-ttl`: seconds; an answer's TTL is raised to at least this. */
export const DEFAULT_MIN_TTL_SECONDS = 0;

/** `--tofqdns-endpoint-max-ip-per-hostname`: IPs one endpoint keeps per name (docs still say 50). */
export const DEFAULT_MAX_IPS_PER_HOSTNAME = 1000;

/** `--tofqdns-max-deferred-connection-deletes`: expired IPs kept per endpoint while connections live. */
export const DEFAULT_MAX_DEFERRED_CONNECTION_DELETES = 10_000;

/** `--tofqdns-proxy-response-max-delay`: ms an answer waits for the datapath before it is released. */
export const DEFAULT_PROXY_RESPONSE_MAX_DELAY_MS = 100;

/** `--tofqdns-idle-connection-grace-period`: ms an expired IP stays selected without a live connection. */
export const DEFAULT_IDLE_CONNECTION_GRACE_PERIOD_MS = 0;

/** Name-cache GC interval (`DNSGCJobInterval`, 1 min). The agent runs `NameManager.gc` on it. */
export const DNS_GC_INTERVAL_MS = 60_000;

/**
 * Names one endpoint keeps (Membrane's bound; Cilium has none, cilium/cilium#48359). Past it the
 * earliest-expiring names leave the cache (their IPs become zombies, so live connections survive).
 */
export const DEFAULT_MAX_NAMES_PER_ENDPOINT = 50_000;
