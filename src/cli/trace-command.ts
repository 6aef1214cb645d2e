/**
 * `membrane policy trace`: the verdict for one flow, offline from files (--policy) or from the
 * running agent's policy. Exit 0 allowed, 1 denied, 2 bad input.
 */
import { membraneError } from '../errors/index.js';
import { formatProblem, tracePolicy, type TraceInput, type TraceResult } from '../policy/index.js';
import { withAgent } from './client.js';
import { loadPolicyFiles } from './policy-files.js';

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `label ${part} is not k=v`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

export async function traceCommand(opts: Record<string, string | string[] | undefined>, socket: string): Promise<number> {
  let input: Omit<TraceInput, 'policies'>;
  try {
    const headers: Record<string, string> = {};
    for (const h of (opts.httpHeader as string[] | undefined) ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `header ${h} is not 'Name: value'`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    const dportText = opts.dport === undefined ? undefined : String(opts.dport);
    const dport = dportText === undefined ? undefined : Number(dportText);
    if (dportText !== undefined && (!/^\d{1,5}$/.test(dportText) || (dport ?? 0) > 65535)) {
      throw membraneError('MEMBRANE_ERR_CLI_USAGE', `--dport ${String(opts.dport)} is not a port`);
    }
    input = {
      src: {
        labels: parseLabels(String(opts.src)),
        namespace: String(opts.srcNamespace),
        ...(opts.srcNamespaceLabels ? { namespaceLabels: parseLabels(String(opts.srcNamespaceLabels)) } : {}),
      },
      dst: {
        labels: parseLabels(String(opts.dst)),
        namespace: String(opts.dstNamespace),
        ...(opts.dstNamespaceLabels ? { namespaceLabels: parseLabels(String(opts.dstNamespaceLabels)) } : {}),
      },
      ...(dport !== undefined ? { dport } : {}),
      protocol: String(opts.proto) as 'TCP',
      ...(opts.srcCidr ? { srcCidr: String(opts.srcCidr) } : {}),
      ...(opts.dstCidr ? { dstCidr: String(opts.dstCidr) } : {}),
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
      // A malformed address in --src-cidr/--dst-cidr is bad input, not a verdict.
      if (!(err instanceof RangeError)) throw err;
      process.stderr.write(`Error: ${err.message}\n`);
      return 2;
    }
  } else {
    result = await withAgent(socket, (c) => c.request<TraceResult>('POST', '/v1/policy/trace', input));
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
