/**
 * Public surface of the FQDN subsystem: pure TypeScript, no I/O. The one toFQDNs matcher, the DNS
 * cache (per endpoint and global, TTL, per-name cap, zombies), the selector index, and the name
 * manager that turns allowed DNS answers into fqdn labels of IPs before the answer is released.
 */
export type { FqdnSelector } from './match.js';
export { selectorMatches, normalizeName, validatePattern, MAX_NAME_LENGTH } from './match.js';
export type { CacheEntry, CacheChange, DnsCacheOptions, DnsCacheSnapshot } from './cache.js';
export { DnsCache } from './cache.js';
export { SelectorIndex } from './selectors.js';
export type { FqdnDatapath, DnsAnswer, NameManagerOptions, NameManagerSnapshot } from './name-manager.js';
export { NameManager, DATAPATH_TIMEOUT_WARNING } from './name-manager.js';
export { canonicalIp } from './ip.js';
export { fqdnLabelsKey, fqdnLearnKey } from './learned-identity.js';
export {
  DEFAULT_MIN_TTL_SECONDS,
  DEFAULT_MAX_IPS_PER_HOSTNAME,
  DEFAULT_MAX_DEFERRED_CONNECTION_DELETES,
  DEFAULT_PROXY_RESPONSE_MAX_DELAY_MS,
  DEFAULT_IDLE_CONNECTION_GRACE_PERIOD_MS,
  DEFAULT_MAX_NAMES_PER_ENDPOINT,
  DNS_GC_INTERVAL_MS,
} from './defaults.js';
