/**
 * `membrane fqdn …`: the toFQDNs matcher from the command line, and the printer of the DNS cache.
 *
 * `fqdn match PATTERN NAME… [-o json]` judges each NAME with the one matcher of src/fqdn (the one
 * the DNS proxy, the name manager and `policy trace` use): exit 0 only if every name matched, 1
 * otherwise, 2 for bad input (an invalid PATTERN gets Cilium's validation text).
 */
import { Option, type Command } from 'commander';
import { membraneError } from '../errors/index.js';
import { selectorMatches, validatePattern, type CacheEntry } from '../fqdn/index.js';
import { withAgent } from './client.js';
import { renderTable } from './table.js';

/** One judged name, as `-o json` prints it. */
export interface MatchResult {
  readonly pattern: string;
  readonly name: string;
  readonly match: boolean;
}

/**
 * Judges `names` against the matchPattern `pattern` (a matchName is a pattern without `*`).
 * Throws `MEMBRANE_ERR_CLI_USAGE` with Cilium's text for an invalid pattern, or for an empty name.
 */
export function matchNames(pattern: string, names: readonly string[]): MatchResult[] {
  const invalid = validatePattern(pattern);
  if (invalid !== null) throw membraneError('MEMBRANE_ERR_CLI_USAGE', invalid);
  const empty = names.findIndex((n) => n.trim() === '');
  if (empty >= 0) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `NAME ${empty + 1} is empty`);
  return names.map((name) => ({ pattern, name, match: selectorMatches({ matchName: undefined, matchPattern: pattern }, name) }));
}

/** `NAME match` / `NAME no match`, one line per name. */
export function formatMatches(results: readonly MatchResult[]): string {
  return results.map((r) => `${r.name} ${r.match ? 'match' : 'no match'}\n`).join('');
}

/**
 * The table of `membrane fqdn cache list`, with the columns of `cilium-dbg fqdn cache list`:
 * Endpoint, Source (`lookup` or `connection`), FQDN, TTL (the answer's, seconds, after
 * `--tofqdns-min-ttl`, as `-o json` gives it; 0 for connections kept past their TTL),
 * ExpirationTime (RFC 3339, UTC), IPs (comma-separated).
 */
export function formatCacheList(entries: readonly CacheEntry[]): string {
  const rows = entries.map((e) => [
    String(e.endpointId),
    e.source,
    e.fqdn,
    // As cilium-dbg prints it: the answer's TTL (after --tofqdns-min-ttl); a zombie's is 0.
    String(e.source === 'lookup' ? e.ttl : 0),
    new Date(e.expirationTime).toISOString(),
    e.ips.join(','),
  ]);
  return renderTable([['Endpoint', 'Source', 'FQDN', 'TTL', 'ExpirationTime', 'IPs']], rows);
}

/** A row of `fqdn cache list -o json`: Cilium's `models.DNSLookup`, as `cilium-dbg fqdn cache list -o json` prints it. */
export interface DnsLookupJson {
  readonly 'endpoint-id': number;
  readonly 'expiration-time': string;
  readonly fqdn: string;
  readonly ips: readonly string[];
  readonly 'lookup-time': string;
  readonly source: 'lookup' | 'connection';
  /** Left out when 0 (a connection row), as Go's `omitempty` leaves it out of Cilium's. */
  readonly ttl?: number;
}

/** Go's strfmt.DateTime text (milliseconds, UTC); ms 0 (a connection never seen alive) is Go's zero time. */
function dateTime(ms: number): string {
  return ms === 0 ? '0001-01-01T00:00:00.000Z' : new Date(ms).toISOString();
}

/** The rows in Cilium's JSON shape: kebab-case names, RFC 3339 times (cilium/cilium api/v1/models DNSLookup). */
export function cacheListJson(entries: readonly CacheEntry[]): DnsLookupJson[] {
  return entries.map((e) => ({
    'endpoint-id': e.endpointId,
    'expiration-time': dateTime(e.expirationTime),
    fqdn: e.fqdn,
    ips: e.ips,
    'lookup-time': dateTime(e.lookupTime),
    source: e.source,
    ...(e.source === 'lookup' && e.ttl > 0 ? { ttl: e.ttl } : {}),
  }));
}

/** Adds the `fqdn` command group to `program`; returns it so the agent-backed subcommands can join it. */
export function registerFqdnCommand(program: Command): Command {
  const fqdn = program.command('fqdn').description('toFQDNs names: test patterns, inspect the DNS cache');
  fqdn
    .command('match')
    .description('judge DNS names against a toFQDNs matchPattern (or matchName) as the DNS proxy does; exit 0 only if every name matched')
    .argument('<pattern>', 'a matchPattern such as "*.github.com" or "**.example.com"; a matchName is a pattern without *')
    .argument('<names...>', 'DNS names (any case, trailing dot optional)')
    .addOption(new Option('-o, --output <mode>', 'output').choices(['text', 'json']).default('text'))
    .action((pattern: string, names: string[], opts: { output: string }) => {
      const results = matchNames(pattern, names);
      process.stdout.write(opts.output === 'json' ? `${JSON.stringify(results, null, 2)}\n` : formatMatches(results));
      process.exitCode = results.every((r) => r.match) ? 0 : 1;
    });
  const cache = fqdn.command('cache').description('the names the DNS proxy learned (the running agent)');
  cache
    .command('list')
    .description('learned names with their IPs, TTL and source endpoint, as `cilium-dbg fqdn cache list`')
    .option('-e, --endpoint <id>', 'only this endpoint (its id, as `endpoint list` shows)')
    .option('-n, --name <name>', 'only this name')
    .option('-p, --matchpattern <pattern>', 'only names this toFQDNs matchPattern matches (as cilium-dbg)')
    .addOption(new Option('-o, --output <mode>', 'output').choices(['table', 'json']).default('table'))
    .action(async (opts: { endpoint?: string; name?: string; matchpattern?: string; output: string }) => {
      if (opts.endpoint !== undefined && !/^[0-9]{1,9}$/.test(opts.endpoint)) {
        throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--endpoint ${JSON.stringify(opts.endpoint)} is not an endpoint id (a number, as \`membrane endpoint list\` shows)`);
      }
      const pattern = opts.matchpattern;
      if (pattern !== undefined) {
        const invalid = validatePattern(pattern);
        if (invalid !== null) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--matchpattern: ${invalid}`);
      }
      const q = new URLSearchParams();
      if (opts.endpoint !== undefined) q.set('endpoint', opts.endpoint);
      if (opts.name !== undefined) q.set('name', opts.name);
      const apiSocket = program.opts<{ apiSocket: string }>().apiSocket;
      const [all, endpoints] = await withAgent(apiSocket, async (c) => [
        await c.request<CacheEntry[]>('GET', `/v1/fqdn/cache${q.size ? `?${q}` : ''}`),
        opts.endpoint !== undefined ? await c.request<{ id: number }[]>('GET', '/v1/endpoints') : [],
      ] as const);
      if (opts.endpoint !== undefined && all.length === 0 && !endpoints.some((e) => e.id === Number(opts.endpoint))) {
        throw membraneError('MEMBRANE_ERR_ENDPOINT_NOT_FOUND', `endpoint ${opts.endpoint} does not exist on this node`);
      }
      const entries = pattern === undefined ? all : all.filter((e) => selectorMatches({ matchName: undefined, matchPattern: pattern }, e.fqdn));
      process.stdout.write(opts.output === 'json' ? `${JSON.stringify(cacheListJson(entries), null, 2)}\n` : formatCacheList(entries));
    });
  return fqdn;
}
