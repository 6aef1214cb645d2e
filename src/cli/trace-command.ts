/**
 * `membrane policy trace`: the verdict for one flow, offline from files (--policy) or from the
 * running agent's policy. Exit 0 allowed, 1 denied, 2 bad input.
 *
 * Each side is a pod (`--src` labels as Cilium writes them, namespace, named ports), an entity
 * (`reserved:host`, `--src-entity world`, …) or an address outside the cluster (`--src-cidr`).
 * The labels are interpreted by the policy module (`traceSide`), so the agent and the offline
 * trace read them the same way.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { isMembraneError, membraneError } from '../errors/index.js';
import {
  formatProblem,
  validateMatchName,
  tracePolicy,
  TraceInputError,
  type NamedPortProtocol,
  type TraceEndpointInput,
  type TraceInput,
  type TraceInputField,
  type TraceResult,
} from '../policy/index.js';
import { withAgent } from './client.js';
import { loadPolicyFiles } from './policy-files.js';

type Opts = Record<string, string | string[] | undefined>;

const PROTOCOLS = ['TCP', 'UDP', 'SCTP', 'ICMP'] as const;

/** `--proto` in any case, as the policy's own `protocol` names it (TCP, UDP, SCTP, ICMP). */
function protocolArg(value: string): string {
  const p = value.toUpperCase();
  if (!(PROTOCOLS as readonly string[]).includes(p)) throw new InvalidArgumentError(`Allowed choices are ${PROTOCOLS.join(', ')}.`);
  return p;
}

function usage(message: string): Error {
  return membraneError('MEMBRANE_ERR_CLI_USAGE', message);
}

/**
 * `[source:]key[=value],…` → key text → value. A label without `=` has the empty value
 * (`reserved:host`). The same key twice is an error: one of them would be lost.
 */
function parseLabelArg(flag: string, text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (key === '') throw usage(`${flag}: label ${JSON.stringify(part)} has no key`);
    if (key in out && out[key] !== value) throw usage(`${flag}: label ${key} is given twice (${out[key]} and ${value})`);
    out[key] = value;
  }
  return out;
}

/** `name=port[/protocol]`, repeated or comma-separated → named ports. */
function parseNamedPorts(flag: string, values: readonly string[]): NonNullable<TraceEndpointInput['namedPorts']> {
  const out: Record<string, { port: number; protocol: NamedPortProtocol }> = {};
  for (const part of values.flatMap((v) => v.split(',')).map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^=]+)=(\d{1,5})(?:\/([A-Za-z]+))?$/.exec(part);
    if (!m) throw usage(`${flag} ${part}: write NAME=PORT or NAME=PORT/PROTOCOL (e.g. http=8080, dns=53/UDP)`);
    const protocol = (m[3] ?? 'TCP').toUpperCase();
    if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') throw usage(`${flag} ${part}: protocol must be TCP, UDP or SCTP`);
    const name = m[1]!;
    if (name in out) throw usage(`${flag}: named port ${name} is given twice (a container port name is unique in a pod)`);
    out[name] = { port: Number(m[2]), protocol };
  }
  return out;
}

function side(which: 'src' | 'dst', opts: Opts): TraceEndpointInput | undefined {
  const key = (suffix: string) => `${which}${suffix}`;
  const labelsText = opts[which] === undefined ? '' : String(opts[which]);
  const labels = parseLabelArg(`--${which}`, labelsText);
  const entity = opts[key('Entity')];
  const namespace = opts[key('Namespace')];
  const nsLabels = opts[key('NamespaceLabels')];
  const named = opts[key('NamedPort')] as string[] | undefined;
  const given = Object.keys(labels).length > 0 || entity !== undefined;
  if (!given) {
    if (opts[key('Cidr')] === undefined) throw usage(`give --${which} LABELS, --${which}-entity ENTITY or --${which}-cidr ADDRESS`);
    for (const [flag, v] of [[`--${which}-namespace`, namespace], [`--${which}-namespace-labels`, nsLabels], [`--${which}-named-port`, named]] as const) {
      if (v !== undefined) throw usage(`${flag} describes a pod; --${which}-cidr is an address outside the cluster`);
    }
    return undefined;
  }
  return {
    labels,
    ...(entity !== undefined ? { entity: String(entity) } : {}),
    ...(namespace !== undefined ? { namespace: String(namespace) } : {}),
    ...(nsLabels !== undefined ? { namespaceLabels: parseLabelArg(`--${which}-namespace-labels`, String(nsLabels)) } : {}),
    ...(named !== undefined ? { namedPorts: parseNamedPorts(`--${which}-named-port`, named) } : {}),
  };
}

const FIELD_FLAG: Readonly<Record<TraceInputField, string>> = {
  labels: '',
  entity: '-entity',
  namespace: '-namespace',
  namespaceLabels: '-namespace-labels',
  namedPorts: '-named-port',
  cidr: '-cidr',
};

/** A trace input error with the flag it is about in front: `--src-namespace: …`. */
function inputErrorText(err: TraceInputError): string {
  const detail = err.message.startsWith(`${err.side}: `) ? err.message.slice(err.side.length + 2) : err.message;
  return `--${err.side}${FIELD_FLAG[err.field]}: ${detail}`;
}

export async function traceCommand(opts: Opts, socket: string): Promise<number> {
  let input: Omit<TraceInput, 'policies'>;
  try {
    const headers: Record<string, string> = {};
    for (const h of (opts.httpHeader as string[] | undefined) ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) throw usage(`header ${h} is not 'Name: value'`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    const dportText = opts.dport === undefined ? undefined : String(opts.dport);
    const dport = dportText === undefined ? undefined : Number(dportText);
    if (dportText !== undefined && (!/^\d{1,5}$/.test(dportText) || (dport ?? 0) > 65535)) {
      throw usage(`--dport ${String(opts.dport)} is not a port`);
    }
    if (opts.dstFqdn !== undefined && !opts.dstCidr) throw usage('--dst-fqdn needs --dst-cidr: the address the name resolved to');
    if (opts.dstFqdn !== undefined) {
      // A name a DNS answer could have taught (what toFQDNs selectors are matched against).
      const name = String(opts.dstFqdn);
      const bad = validateMatchName(name);
      if (bad !== null) throw usage(`--dst-fqdn ${JSON.stringify(name)}: ${bad}`);
    }
    const src = side('src', opts);
    const dst = side('dst', opts);
    input = {
      ...(src ? { src } : {}),
      ...(dst ? { dst } : {}),
      ...(dport !== undefined ? { dport } : {}),
      protocol: String(opts.proto) as 'TCP',
      ...(opts.srcCidr ? { srcCidr: String(opts.srcCidr) } : {}),
      ...(opts.dstCidr ? { dstCidr: String(opts.dstCidr) } : {}),
      ...(opts.dstFqdn !== undefined ? { dstFqdn: String(opts.dstFqdn) } : {}),
      ...(opts.httpMethod || opts.httpPath
        ? {
            http: {
              method: String(opts.httpMethod ?? 'GET'),
              path: String(opts.httpPath ?? '/'),
              ...(opts.httpHost ? { host: String(opts.httpHost) } : {}),
              headers,
            },
          }
        : {}),
      ...(opts.dnsName ? { dnsName: String(opts.dnsName) } : {}),
      // An empty --tls-sni is a ClientHello without SNI, which no serverNames entry matches.
      ...(opts.tlsSni !== undefined ? { tlsSni: String(opts.tlsSni) === '' ? null : String(opts.tlsSni) } : {}),
    };
  } catch (err) {
    process.stderr.write(`Error: ${(err as Error).message}\n`);
    return 2;
  }
  let result: TraceResult;
  if (opts.policy) {
    const reports = loadPolicyFiles(opts.policy as string[]);
    const problems = reports.flatMap((r) => r.problems);
    if (problems.length) {
      for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
      return 2;
    }
    try {
      result = tracePolicy({ ...input, policies: reports.flatMap((r) => r.policies) });
    } catch (err) {
      // Labels that contradict a flag, an unknown label source, a malformed address: bad input, not a verdict.
      if (err instanceof TraceInputError) {
        process.stderr.write(`Error: ${inputErrorText(err)}\n`);
        return 2;
      }
      if (!(err instanceof RangeError)) throw err;
      process.stderr.write(`Error: ${err.message}\n`);
      return 2;
    }
  } else {
    try {
      result = await withAgent(socket, (c) => c.request<TraceResult>('POST', '/v1/policy/trace', input));
    } catch (err) {
      // The agent judged the input itself and refused it (400): still bad input.
      if (!isMembraneError(err) || err.code !== 'MEMBRANE_ERR_API_REQUEST') throw err;
      process.stderr.write(`Error: ${err.message} [${err.code}]\n`);
      return 2;
    }
  }
  if (opts.output === 'json') {
    const { lines: _lines, ...rest } = result;
    // Clusterwide policies have no namespace: say null rather than leave the key out.
    const matched = rest.matched.map((m) => ({ ...m, namespace: m.namespace ?? null }));
    process.stdout.write(`${JSON.stringify({ ...rest, matched }, null, 2)}\n`);
  } else {
    process.stdout.write(`${result.lines.join('\n')}\n`);
  }
  return result.verdict === 'allowed' ? 0 : 1;
}

/** Declares `policy trace` and its flags under `policy`. */
export function registerTraceCommand(policy: Command, socket: () => string): void {
  policy
    .command('trace')
    .description("explain the verdict for a flow: the source's egress policy, then the destination's ingress policy")
    .option('--policy <paths...>', "policy files or directories (offline); without it the running agent's policy is used")
    .option(
      '--src <labels>',
      'source labels [source:]key[=value],… as Cilium writes them (k8s: is the default; io.kubernetes.pod.namespace, io.cilium.k8s.policy.serviceaccount, io.cilium.k8s.policy.cluster and io.cilium.k8s.namespace.labels.* are honoured; reserved:host etc. trace an entity)',
    )
    .option('--dst <labels>', 'destination labels, as --src')
    .option('--src-entity <entity>', 'source is this Cilium entity: host, remote-node, kube-apiserver, world, world-ipv4, world-ipv6, health, init, ingress, unmanaged')
    .option('--dst-entity <entity>', 'destination is this Cilium entity, as --src-entity')
    .option('--src-namespace <ns>', 'source namespace (default: the io.kubernetes.pod.namespace label, else default)')
    .option('--dst-namespace <ns>', 'destination namespace (as --src-namespace)')
    .option('--src-namespace-labels <labels>', "labels of the source's namespace k=v,k2=v2 (for namespaceSelector)")
    .option('--dst-namespace-labels <labels>', "labels of the destination's namespace k=v,k2=v2")
    .option('--dst-named-port <name=port...>', "the destination pod's named container ports NAME=PORT[/PROTO] (repeat or comma-separate), for rules with a named port")
    .option('--src-named-port <name=port...>', "the source pod's named container ports (they count for egress rules whose named port selects every peer)")
    .option('--dport <port>', 'destination port')
    .addOption(new Option('--proto <proto>', 'protocol: TCP, UDP, SCTP or ICMP (any case)').default('TCP').argParser(protocolArg))
    .option('--src-cidr <ip>', 'source is this address outside the cluster (instead of --src)')
    .option('--dst-cidr <ip>', 'destination is this address outside the cluster (instead of --dst)')
    .option('--dst-fqdn <name>', 'with --dst-cidr IP: IP was learned from an allowed DNS lookup of this name (judges toFQDNs rules offline)')
    .option('--http-method <m>')
    .option('--http-path <p>')
    .option('--http-host <h>')
    .option('--http-header <h...>', "'Name: value'")
    .option('--dns-name <name>')
    .option('--tls-sni <name>', "the TLS ClientHello's server name, for serverNames rules ('' = a ClientHello without SNI)")
    .addOption(new Option('-o, --output <mode>', 'output').choices(['text', 'json']).default('text'))
    .action(async (opts: Opts) => {
      process.exitCode = await traceCommand(opts, socket());
    });
}
