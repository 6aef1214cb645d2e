#!/usr/bin/env node
/**
 * The `membrane` command. Flags are declared in one table per command (commander), output
 * goes through the observe printers or the column renderer, and errors print their code.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isMembraneError, membraneError } from '../errors/index.js';
import { formatProblem, formatWarning } from '../policy/index.js';
import {
  autoColor,
  COLOR_MODES,
  FlowPrinter,
  filtersFromFlags,
  FILTER_FLAGS,
  isOutputMode,
  output,
  rawFilters,
  SHORT_FILTER_FLAGS,
  TIME_FORMATS,
  timeFormatNamed,
  UNSUPPORTED_FILTER_FLAGS,
  withColor,
  withIPTranslation,
  withJsonpbEncoder,
  withNodeName,
  withTimeFormat,
  withWriter,
} from '../observe/index.js';
import { withAgent } from './client.js';
import { clientTls, observeFlows, observeWindow, rawFiltersYaml, UNSUPPORTED_OBSERVE_FLAGS, type ObserveOptions } from './observe-command.js';
import { jsonpbEncoder } from './observe-jsonpb.js';
import { removeNodeNetwork, removePins, run } from '../datapath/index.js';
import { renderTable } from './table.js';
import { importPolicyFile, loadPolicyFiles, validationJson } from './policy-files.js';
import { runAgent } from './agent-command.js';
import { labCommands } from './lab-command.js';
import { runDemo } from './demo.js';
import { registerTraceCommand } from './trace-command.js';
import { registerFqdnCommand } from './fqdn-command.js';
import { parseDurationMs } from './duration.js';

// A reader that went away (`membrane policy get | head -1`) ends the command quietly, as it ends
// cilium and kubectl: Go dies of SIGPIPE on a write to a closed stdout or stderr, status 141
// (128 + 13) in the shell. Node ignores SIGPIPE, so the status is given by hand.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(141);
  process.stderr.write(`Error: cannot write to standard output: ${err.message} [MEMBRANE_ERR_UNEXPECTED]\n`);
  process.exit(1);
});
process.stderr.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 141 : 1));

const program = new Command('membrane')
  .description('Sidecar-less service mesh data plane: CiliumNetworkPolicy in eBPF plus a per-node L7 proxy')
  .option('--api-socket <path>', 'agent API socket', process.env.MEMBRANE_API_SOCKET ?? '/run/membrane/agent.sock')
  .enablePositionalOptions()
  .showHelpAfterError();

const socket = (): string => program.opts<{ apiSocket: string }>().apiSocket;

/** Cilium-style boolean flags: `--flag`, `--flag=true`, `--flag=false`. */
function booleanFlag(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new InvalidArgumentError('expected true or false');
}

/** `observe -o`: hubble's output modes, in any case (hubble lower-cases the flag). */
function observeOutputMode(value: string): string {
  const mode = value.toLowerCase();
  if (!['compact', 'dict', 'json', 'jsonpb', 'table', 'tab'].includes(mode)) {
    throw new InvalidArgumentError('Allowed choices are compact, dict, json, jsonpb, table, tab.');
  }
  return mode;
}

/** A Go duration (Cilium's duration flags) → whole milliseconds, as a string like the other options. */
function durationMs(value: string): string {
  const ms = parseDurationMs(value);
  if (ms === null) throw new InvalidArgumentError('expected a duration such as 100ms, 1.5s or 1m30s (or whole milliseconds)');
  return String(ms);
}

/** A whole number ≥ 0 of `unit` (the message names the unit: seconds, ms, IPs, worker threads). */
function nonNegativeInt(unit: string): (value: string) => string {
  return (value) => {
    if (!/^[0-9]{1,9}$/.test(value)) throw new InvalidArgumentError(`expected a whole number of ${unit} (0 or more)`);
    return value;
  };
}

program
  .command('agent')
  .description('run the node agent (local mode: policies from a directory, endpoints from the lab or the API)')
  .option('--policy-dir <dir>', 'directory of CiliumNetworkPolicy YAML files to watch', '/etc/membrane/policies')
  .option('--state-dir <dir>', 'where identities and endpoints survive restarts', '/var/lib/membrane')
  .option('--pin-root <dir>', 'bpffs directory for maps and links', '/sys/fs/bpf/membrane')
  .option('--netns <name>', 'run in this network namespace (created if missing), e.g. the lab node')
  .option('--http-proxy-port <port>', 'transparent HTTP proxy port', '15001')
  .option('--dns-proxy-port <port>', 'transparent DNS proxy port', '15053')
  .option('--tls-proxy-port <port>', 'transparent TLS passthrough port (serverNames rules: SNI check, no termination)', '15443')
  .option('--node-name <name>', 'node name shown in flows')
  .option('--access-log <file>', 'write proxy access logs (JSON lines) to this file, or to standard output with `stdout` (as cilium --hubble-export-file-path), instead of the agent log')
  .option('--access-log-max-size-mb <mb>', 'rotate the access log file past this size (as cilium --hubble-export-file-max-size-mb)', '10')
  .option('--access-log-rotate-interval <minutes>', 'also rotate the access log file once it has been live this long and is not empty, minutes (e.g. 60, 1440); 0: by size only', '0')
  .option('--access-log-max-backups <n>', 'rotated access log files kept: FILE.1 … FILE.N (as cilium --hubble-export-file-max-backups)', '5')
  .option('--access-log-sample-rate <rate>', 'share of forwarded HTTP requests written to the access log, in (0, 1]; denied and failed requests are always logged, flows are never sampled', '1')
  .option('--flow-buffer <n>', 'flows kept for `membrane observe`', '4096')
  .option('--hubble-socket-path <path>', 'unix socket of the Hubble observer API (default: hubble.sock beside --api-socket; Cilium)')
  .option('--hubble-listen-address <host:port>', 'also serve the Hubble observer API on TCP, with TLS (Cilium)')
  .option('--hubble-tls-cert-file <file>', 'certificate of the TCP Hubble listener (Cilium)')
  .option('--hubble-tls-key-file <file>', 'private key of the TCP Hubble listener (Cilium)')
  .option('--hubble-tls-client-ca-files <files>', 'comma-separated CA files a client certificate of the TCP Hubble listener must chain to; required with --hubble-listen-address (Cilium)')
  .option('--http-request-timeout <seconds>', 'time after which a forwarded HTTP request is considered failed unless completed; 0 for unlimited (Cilium)', nonNegativeInt('seconds'), '3600')
  .option('--http-normalize-path [bool]', 'normalise HTTP paths (RFC 3986, merged slashes, redirect for escaped slashes) before policy; false only with caution (Cilium)', booleanFlag, true)
  .addOption(
    new Option('--tofqdns-dns-reject-response-code <code>', 'answer to a DNS query policy denies (Cilium)').choices(['refused', 'nameError']).default('refused'),
  )
  .option('--tofqdns-min-ttl <seconds>', 'minimum TTL of a learned DNS name (Cilium)', nonNegativeInt('seconds'), '0')
  .option('--tofqdns-endpoint-max-ip-per-hostname <n>', 'IPs kept per name and endpoint (Cilium)', nonNegativeInt('IPs'), '1000')
  .option('--otlp-endpoint <URL>', 'trace HTTP proxy requests to this OpenTelemetry collector (OTLP/HTTP base URL, e.g. http://127.0.0.1:4318); the OTEL_EXPORTER_OTLP_* and OTEL_TRACES_SAMPLER* variables work too. Default: off')
  .option('--prometheus-serve-addr <IP:Port>', 'serve Prometheus metrics at /metrics on this address; :Port for every interface (Cilium; its port is 9962). Default: off')
  .addOption(
    new Option('--tofqdns-proxy-response-max-delay <duration>', 'longest a DNS answer waits for its IPs to reach the datapath: a Go duration such as 100ms or 1s, or whole milliseconds (Cilium)')
      .argParser(durationMs)
      .default('100', '100ms'),
  )
  .option(
    '--proxy-workers <n>',
    'worker threads running the HTTP/TLS/DNS proxies (one SO_REUSEPORT listener each); 0 = on the agent\'s own event loop (default: CPUs, at most 8, as Envoy\'s --concurrency; at most 64)',
    nonNegativeInt('worker threads'),
  )
  .option(
    '--proxy-worker-priority <n>',
    'how many nice steps (0-20) above the agent\'s own CPU priority the proxy worker threads run, so a request does not wait behind regenerations (default: 10 while the workers leave a CPU to the agent, else 0)',
  )
  .option(
    '--control-plane-nice <n>',
    'how much lower (nice, 0-19) the CPU priority of the agent\'s policy reads and regenerations is than its proxy workers\'; 0 = the same (default: 0)',
  )
  .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .action(async (opts) => runAgent({ ...opts, apiSocket: socket() }));

const endpoint = program.command('endpoint').description('local endpoints (pods)');
endpoint
  .command('list')
  .description('list endpoints, as `cilium-dbg endpoint list`')
  .addOption(new Option('-o, --output <mode>', 'output').choices(['table', 'json']).default('table'))
  .action(async (opts: { output: string }) => {
    const eps = await withAgent(socket(), (c) =>
      c.request<{ id: number; identity: number; labels: string[]; ipv4: string; ingressEnforcement: boolean; egressEnforcement: boolean; status: string }[]>('GET', '/v1/endpoints'),
    );
    if (opts.output === 'json') {
      process.stdout.write(`${JSON.stringify(eps, null, 2)}\n`);
      return;
    }
    const onOff = (b: boolean): string => (b ? 'Enabled' : 'Disabled');
    process.stdout.write(
      renderTable(
        [
          ['ENDPOINT', 'POLICY (ingress)', 'POLICY (egress)', 'IDENTITY', 'LABELS (source:key[=value])', 'IPv6', 'IPv4', 'STATUS'],
          ['', 'ENFORCEMENT', 'ENFORCEMENT', '', '', '', '', ''],
        ],
        eps.map((e) => [String(e.id), onOff(e.ingressEnforcement), onOff(e.egressEnforcement), String(e.identity), e.labels, '', e.ipv4, e.status]),
      ),
    );
  });

const policy = program.command('policy').description('manage and reason about CiliumNetworkPolicy');
policy
  .command('import <file>')
  .description('validate a policy file and add it to the agent\'s watched directory')
  .action(async (file: string) => {
    const r = await withAgent(socket(), (c) => importPolicyFile(c, file));
    process.stdout.write(`Imported ${r.policies.join(', ')} (${r.file}), revision ${r.revision}\n`);
    // Same kind, namespace and name as a policy of another file: replaced (as kubectl apply); say so.
    const ref = (p: { kind: string; namespace: string | null; name: string }): string => `${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}`;
    for (const p of r.replaced ?? []) {
      process.stdout.write(`Replaced ${ref(p)} from ${p.file}${p.fileRemoved ? ' (file removed: it held no other policy)' : ' (removed from that file)'}\n`);
    }
    for (const p of r.dropped ?? []) process.stdout.write(`Removed ${ref(p)}: ${p.file} was overwritten by a file without it\n`);
  });
policy
  .command('get')
  .description('show the policies the agent enforces')
  .addOption(new Option('-o, --output <mode>', 'output').choices(['table', 'json']).default('table'))
  .action(async (opts: { output: string }) => {
    const r = await withAgent(socket(), (c) =>
      c.request<{ revision: number; files: { file: string; policies: { kind: string; name: string; namespace: string | null }[]; problems: { path: string; message: string; name: string; file: string }[] }[] }>('GET', '/v1/policy'),
    );
    if (opts.output === 'json') {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      return;
    }
    const rows = r.files.flatMap((f) =>
      f.policies.map((p) => [p.namespace ?? '', p.name, p.kind, f.file, f.problems.length ? 'invalid update rejected' : 'ok']),
    );
    process.stdout.write(renderTable([['NAMESPACE', 'NAME', 'KIND', 'FILE', 'STATUS']], rows));
    process.stdout.write(`Revision: ${r.revision}\n`);
  });
policy
  .command('delete [name]')
  .description('delete a policy by name from the watched directory')
  .option('--all', 'delete every policy')
  .action(async (name: string | undefined, opts: { all?: boolean }) => {
    if (!name && !opts.all) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'give a policy name or --all');
    const q = opts.all ? 'all=1' : `name=${encodeURIComponent(name ?? '')}`;
    const r = await withAgent(socket(), (c) => c.request<{ removed: string[]; revision: number }>('DELETE', `/v1/policy?${q}`));
    // Deleting nothing with --all is success, as `cilium policy delete --all` on an empty repository.
    process.stdout.write(r.removed.length ? `Deleted ${r.removed.join(', ')}, revision ${r.revision}\n` : `No policies to delete, revision ${r.revision}\n`);
  });
policy
  .command('validate <paths...>')
  .description('check policy files offline; exit 1 if any is invalid')
  .addOption(new Option('-o, --output <mode>', 'output').choices(['text', 'json']).default('text'))
  .action((paths: string[], opts: { output: string }) => {
    const reports = loadPolicyFiles(paths);
    const invalid = reports.some((r) => r.problems.length > 0);
    if (opts.output === 'json') {
      process.stdout.write(`${JSON.stringify(validationJson(reports), null, 2)}\n`);
    } else {
      for (const r of reports) {
        if (r.problems.length) {
          for (const p of r.problems) process.stdout.write(`${formatProblem(p)}\n`);
          continue;
        }
        // With problems to report, stdout holds exactly one line per problem; the files that
        // passed are still named (with their warnings), on stderr.
        const out = invalid ? process.stderr : process.stdout;
        out.write(`${r.file}: valid (${r.policies.map((p) => p.name).join(', ') || 'no policies'})\n`);
        for (const w of r.warnings) out.write(`${formatWarning(w)}\n`);
      }
    }
    process.exitCode = invalid ? 1 : 0;
  });
registerTraceCommand(policy, socket);

registerFqdnCommand(program);

program
  .command('observe')
  .description('show recent flows (drops, policy verdicts, L7 requests) like `hubble observe`')
  .option('--last <n>', 'number of recent flows', '20')
  .option('--first <n>', 'the oldest N flows the agent still holds, instead of the last ones (hubble)')
  .option('--all', 'every flow the agent holds (hubble)')
  .option('--since <time>', 'flows since this time: a duration before now (5m, 1h30m), 2026-12-01, 2026-12-01T10Z, 2026-12-01T10:00Z, RFC 3339, RFC 1123Z or StampMilli (hubble)')
  .option('--until <time>', 'flows until this time, as --since; ignored with --follow (hubble)')
  .option('-f, --follow', 'keep printing new flows')
  .option('--server <address>', 'Hubble observer API of the agent: unix:///path or host:port (default: hubble.sock beside --api-socket)')
  .option('--tls', 'connect to --server with TLS (hubble); the agent\'s --hubble-listen-address requires it and a client certificate')
  .option('--tls-ca-cert-files <files...>', 'CA certificates the server\'s must chain to (hubble; default: the system\'s)')
  .option('--tls-client-cert-file <file>', 'client certificate for mutual TLS (hubble)')
  .option('--tls-client-key-file <file>', 'key of --tls-client-cert-file (hubble)')
  .option('--tls-server-name <name>', 'name the server certificate must carry, when not the --server host (hubble)')
  .addOption(
    new Option('-o, --output <mode>', 'compact, dict, json (every field the agent wrote), jsonpb (GetFlowsResponse as proto3 JSON, as hubble) or table (tab-aligned columns); any case, as hubble')
      .argParser(observeOutputMode)
      .default('compact'),
  )
  .option('--print-node-name', 'print the node name in output (hubble)')
  .option('--time-format <name>', `time format: ${TIME_FORMATS.join(', ')} (hubble)`, 'StampMilli')
  .option('--numeric', 'print IP addresses, not pod or DNS names (hubble; implies --ip-translation=false)')
  .option('--ip-translation [bool]', 'show pod and DNS names instead of IP addresses (hubble)', booleanFlag, true)
  .addOption(new Option('--color <when>', 'colour compact and dict output: auto, always or never (hubble)').choices([...COLOR_MODES]).default('auto'))
  .option('--allowlist <json>', 'JSON FlowFilter(s) a flow may match (hubble; repeatable)', (v: string, prev: string[] = []) => [...prev, v])
  .option('--denylist <json>', 'JSON FlowFilter(s) a flow must not match (hubble; repeatable)', (v: string, prev: string[] = []) => [...prev, v])
  .option('--print-raw-filters', 'print the allowlist/denylist filters as YAML and exit without asking the agent (hubble)')
  .option('-s, --silent-errors', 'do not print warnings (lost events) on stderr (hubble)')
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .helpOption('-h, --help', `filters (as hubble): ${Object.keys(FILTER_FLAGS).map((f) => `--${f}`).join(' ')}; -t = --type, -n = --namespace, -l = --label, -4 = --ipv4, -6 = --ipv6`)
  .action(async (opts: ObserveOptions, cmd: Command) => {
    const flagFilters = filtersFromFlags(filterArgs(cmd.args));
    const filters = {
      allow: [...flagFilters.allow, ...rawFilters('allowlist', opts.allowlist ?? [])],
      deny: [...flagFilters.deny, ...rawFilters('denylist', opts.denylist ?? [])],
    };
    const window = observeWindow(opts, cmd.getOptionValueSource('last') !== 'default');
    const timeFormat = timeFormatNamed(opts.timeFormat);
    if (timeFormat === undefined) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--time-format ${opts.timeFormat}: expected one of ${TIME_FORMATS.join(', ')}`);
    const mode = opts.output === 'tab' ? 'table' : isOutputMode(opts.output) ? opts.output : 'compact';
    if (mode === 'table' && opts.follow) throw membraneError('MEMBRANE_ERR_CLI_USAGE', 'table output format is not compatible with follow mode');
    if (opts.printRawFilters) {
      process.stdout.write(await rawFiltersYaml(filters));
      return;
    }
    const tls = clientTls(opts);
    const printer = new FlowPrinter(
      output(mode),
      withWriter(process.stdout),
      withTimeFormat(timeFormat),
      withNodeName(opts.printNodeName ?? false),
      withIPTranslation(opts.ipTranslation !== false && !opts.numeric),
      withColor(mode !== 'table' && (opts.color === 'always' || (opts.color === 'auto' && autoColor(process.stdout.isTTY === true)))),
      ...(mode === 'jsonpb' ? [withJsonpbEncoder(await jsonpbEncoder())] : []),
    );
    await observeFlows(opts.server, socket(), {
      ...window,
      follow: opts.follow ?? false,
      filters,
      print: (f) => printer.write(f),
      silentErrors: opts.silentErrors ?? false,
    }, tls);
    printer.close();
  });

program
  .command('status')
  .description('agent status: regeneration, policies, proxy and datapath counters')
  .action(async () => {
    const s = await withAgent(socket(), (c) => c.request<unknown>('GET', '/v1/status'));
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  });

program
  .command('uninstall')
  .description('remove what a stopped agent leaves in force on purpose: its pinned programs and maps, the proxy routing rule, its node namespace')
  .option('--pin-root <dir>', 'bpffs directory of the agent', '/sys/fs/bpf/membrane')
  .option('--netns <name>', 'the agent ran in this network namespace: delete it')
  .action(async (opts: { pinRoot: string; netns?: string }) => {
    const up = await withAgent(socket(), (c) => c.request('GET', '/v1/healthz')).then(() => true, () => false);
    if (up) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `an agent is still serving ${socket()}: stop it first`);
    removePins(opts.pinRoot);
    if (opts.netns) {
      // Undo the node settings inside the namespace first (this also drops our record of them),
      // then the namespace itself.
      if (existsSync(`/run/netns/${opts.netns}`)) {
        spawnSync('nsenter', [`--net=/run/netns/${opts.netns}`, process.execPath, fileURLToPath(import.meta.url), 'uninstall', '--pin-root', opts.pinRoot], {
          stdio: 'ignore',
        });
      }
      run('ip', ['netns', 'del', opts.netns], { allowFail: true });
    } else {
      removeNodeNetwork();
    }
    process.stdout.write(`removed ${opts.pinRoot}${opts.netns ? ` and network namespace ${opts.netns}` : ' and the proxy routing rule'}\n`);
  });

labCommands(program, socket);

program
  .command('demo')
  .description('run a demo end to end (starts the agent, builds the lab, runs the scenario, tears down)')
  .argument('[name]', 'demo name', 'starwars')
  .option('--keep', 'leave the lab and agent running at the end')
  .action(async (name: string, opts: { keep?: boolean }) => {
    process.exitCode = await runDemo(name, { keep: opts.keep ?? false });
  });

/** Exit status for an error: 2 for a usage error (ours or one the agent found in our request), else 1. */
function exitStatusOf(code: string): number {
  return code === 'MEMBRANE_ERR_CLI_USAGE' ? 2 : 1;
}

/**
 * Turns the observe command's unknown options into hubble-style filter flags, in order: `--name
 * value`, `--name=value`, and Hubble's short forms `-t drop`, `-tdrop`, `-t=drop`, `-4`, `-6`.
 * A Hubble flag Membrane does not support is a usage error naming it.
 */
function filterArgs(args: readonly string[]): [string, string?][] {
  const out: [string, string?][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      [name = '', inline] = a.slice(2).split(/=(.*)/s, 2);
    } else if (/^-[^-]/.test(a)) {
      const short = a[1] ?? '';
      const long = SHORT_FILTER_FLAGS[short];
      const rest = a.slice(2);
      if (long === undefined) {
        const unsupported = UNSUPPORTED_OBSERVE_FLAGS[`-${short}`];
        throw membraneError('MEMBRANE_ERR_CLI_USAGE', unsupported !== undefined ? `-${short} is not supported by Membrane: ${unsupported}` : `unknown option ${a}`);
      }
      name = long;
      if (rest !== '') inline = rest.startsWith('=') ? rest.slice(1) : rest;
    } else {
      throw membraneError('MEMBRANE_ERR_CLI_USAGE', `unexpected argument ${a}`);
    }
    const unsupported = UNSUPPORTED_OBSERVE_FLAGS[`--${name}`] ?? (UNSUPPORTED_FILTER_FLAGS[name] !== undefined ? UNSUPPORTED_FILTER_FLAGS[name] : undefined);
    if (unsupported !== undefined) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--${name} is not supported by Membrane: ${unsupported}`);
    if (name === 'not') {
      out.push(['not']);
      continue;
    }
    if (!(name in FILTER_FLAGS)) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `unknown filter --${name}`);
    const needsValue = FILTER_FLAGS[name as keyof typeof FILTER_FLAGS].value !== null;
    if (!needsValue) out.push([name]);
    else if (inline !== undefined) out.push([name, inline]);
    else {
      if (i + 1 >= args.length) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `flag needs an argument: --${name}`);
      out.push([name, args[++i] ?? '']);
    }
  }
  return out;
}

// Usage errors (unknown option, missing or invalid argument) exit 2, as `policy trace`'s contract
// requires for bad input; 1 stays the answer "invalid" / "denied".
program.exitOverride();
for (const cmd of program.commands) exitOverrideAll(cmd);
function exitOverrideAll(cmd: Command): void {
  cmd.exitOverride();
  for (const sub of cmd.commands) exitOverrideAll(sub);
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
    return;
  }
  // The code is the one the error was raised with, in this process or in the agent (the client
  // keeps it across the API), so scripts can match on it.
  const code = isMembraneError(err) ? err.code : 'MEMBRANE_ERR_UNEXPECTED';
  process.stderr.write(`Error: ${(err as Error).message} [${code}]\n`);
  const problems = (err as { details?: { problems?: Parameters<typeof formatProblem>[0][] } }).details?.problems;
  for (const p of problems ?? []) process.stderr.write(`  ${formatProblem(p)}\n`);
  process.exitCode = Number(process.exitCode ?? 0) > 1 ? process.exitCode : exitStatusOf(code);
});

