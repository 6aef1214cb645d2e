/**
 * `membrane demo mediabot`: the DNS-based policy walkthrough of Cilium's getting-started guide
 * (../shared/reference/cilium-overview-and-starwars-demo.txt, "Locking down external access
 * with DNS-based policies") on this machine. Starts an agent in its own node namespace, builds
 * deploy/lab/mediabot.yaml (mediabot, a kube-dns pod running dnsmasq, the world namespace
 * serving GitHub's names over HTTPS), imports each reference policy and runs the reference's
 * `curl -I -s https://NAME | head -1` in mediabot, checks every outcome against Cilium's, shows
 * the kernel drops, the FQDN cache and the DNS flows, and tears down. Exit 1 if any outcome
 * differs.
 *
 * "Blocked" is checked as the mechanism Cilium uses, not only as a timeout: the name still
 * resolves (the DNS rule `matchPattern: "*"` allows every lookup) and the connection to the
 * learned address is dropped in the kernel (a DROPPED flow from mediabot to that address:port).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowPrinter, flowPorts, output, withWriter, type Flow } from '../observe/index.js';
import { readLabState } from '../lab/index.js';
import { AgentClient, DEFAULT_API_SOCKET } from './client.js';
import { labDownCommand, labUpCommand } from './lab-command.js';
import { agentServing, DEMO_PIN_ROOT, finishDemo, startDemoAgent } from './demo-agent.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const WORK = '/run/membrane/demo/mediabot';
const SOCKET = join(WORK, 'agent.sock');
/** The Star Wars demo's socket: a kept (`--keep`) Star Wars agent owns the same pins. */
const STARWARS_SOCKET = '/run/membrane/demo/agent.sock';
const LAB = 'mediabot';
const POD = 'mediabot';
/** Seconds, as the reference's `--max-time 5`. */
const MAX_TIME = 5;

/** What the first line of `curl -I -s URL` must be, or `blocked` (no answer: dropped). */
type Expectation = 'HTTP/2 200' | 'HTTP/2 302' | 'HTTP/1.1 301 Moved Permanently' | 'blocked';

interface Probe {
  readonly url: string;
  readonly expect: Expectation;
  readonly says: string;
}

interface SceneContext {
  out: (s?: string) => boolean;
  expect: (ok: boolean, what: string) => void;
}

/** One step of the reference walkthrough: the policy to import, the curls, what each must give. */
interface Scene {
  title: string;
  imports?: string[];
  /** Names to look up with `dig +short` first: each must resolve, policy or not. */
  digs?: string[];
  probes: Probe[];
  check?: (ctx: SceneContext) => Promise<void>;
}

const API = 'https://api.github.com';
const SUPPORT = 'https://support.github.com';
const GITHUB = 'https://github.com';
const SUPPORT_HTTP = 'http://support.github.com';

/** The walkthrough, in the reference's order, after a baseline without policy. */
const SCENES: Scene[] = [
  {
    title: '1. No policy: mediabot resolves through kube-dns and reaches every GitHub name',
    digs: ['api.github.com', 'support.github.com'],
    probes: [
      { url: API, expect: 'HTTP/2 200', says: 'api.github.com answers 200' },
      { url: SUPPORT, expect: 'HTTP/2 302', says: 'support.github.com answers 302' },
      { url: GITHUB, expect: 'HTTP/2 200', says: 'github.com answers 200' },
      { url: SUPPORT_HTTP, expect: 'HTTP/1.1 301 Moved Permanently', says: 'http://support.github.com answers on port 80' },
    ],
  },
  {
    title: '2. DNS policy using DNS strict match (dns-matchname.yaml): toFQDNs matchName api.github.com',
    imports: ['dns-matchname.yaml'],
    probes: [
      { url: API, expect: 'HTTP/2 200', says: 'api.github.com answers 200' },
      { url: SUPPORT, expect: 'blocked', says: 'support.github.com resolves, and the connection is dropped in the kernel' },
    ],
  },
  {
    title: '3. DNS policies using patterns (dns-pattern.yaml): toFQDNs matchPattern *.github.com',
    imports: ['dns-pattern.yaml'],
    probes: [
      { url: API, expect: 'HTTP/2 200', says: 'api.github.com answers 200' },
      { url: SUPPORT, expect: 'HTTP/2 302', says: 'support.github.com answers 302' },
      { url: GITHUB, expect: 'blocked', says: 'github.com is not *.github.com: resolves, and the connection is dropped' },
    ],
  },
  {
    title: '4. Combining DNS, port and L7 rules (dns-port.yaml): *.github.com and github.com, port 443 only',
    imports: ['dns-port.yaml'],
    probes: [
      { url: API, expect: 'HTTP/2 200', says: 'api.github.com:443 answers 200' },
      { url: SUPPORT, expect: 'HTTP/2 302', says: 'support.github.com:443 answers 302' },
      { url: GITHUB, expect: 'HTTP/2 200', says: 'github.com:443 answers 200' },
      { url: SUPPORT_HTTP, expect: 'blocked', says: 'support.github.com:80 resolves, and the connection is dropped' },
    ],
    check: async ({ out, expect }) => {
      out('$ membrane fqdn cache list');
      const cache = cli(['fqdn', 'cache', 'list']);
      out((cache.stdout || cache.stderr).trimEnd());
      const addresses = await ipcacheAddresses();
      for (const name of ['api.github.com', 'support.github.com', 'github.com']) {
        const ips = lookup(name);
        const row = cache.stdout.split('\n').some((l) => l.split(/\s+/).some((w) => w.replace(/\.$/, '') === name) && ips.some((ip) => l.includes(ip)));
        expect(cache.status === 0 && row, `the FQDN cache holds ${name} → ${ips.join(', ')}`);
        expect(ips.length > 0 && ips.every((ip) => addresses.has(ip)), `${name}'s addresses are in the ipcache, learned from DNS`);
      }
    },
  },
];

interface Head {
  /** First line of curl's output, as `| head -1` prints it (without the CR). */
  readonly line: string;
  readonly curlExit: number;
}

/** `curl -I -s --max-time 5 URL | head -1` in mediabot (curl run directly to keep its exit status). */
function curlHead(url: string): Head {
  const r = spawnSync('ip', ['netns', 'exec', POD, 'curl', '-I', '-s', '--max-time', String(MAX_TIME), url], { encoding: 'utf8' });
  return { line: (r.stdout ?? '').split('\n')[0]?.trimEnd() ?? '', curlExit: r.status ?? -1 };
}

/** `dig +short NAME` in mediabot: the A records at the end of the chain. */
function lookup(name: string): string[] {
  const r = spawnSync('ip', ['netns', 'exec', POD, 'dig', '+short', '+tries=1', '+time=3', name], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
}

function cli(args: string[]): { stdout: string; stderr: string; status: number } {
  const r = spawnSync(process.execPath, [CLI, '--api-socket', SOCKET, ...args], { encoding: 'utf8' });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status ?? -1 };
}

/**
 * One API call on a fresh connection: a scene can leave the API idle for longer than the
 * agent's keep-alive, and a request written on a connection the agent is closing fails (EPIPE).
 */
async function api<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string): Promise<T> {
  const client = new AgentClient(SOCKET);
  try {
    return await client.request<T>(method, path);
  } finally {
    await client.close();
  }
}

/** Addresses in the agent's ipcache (pods, node, and what toFQDNs selectors learned). */
async function ipcacheAddresses(): Promise<Set<string>> {
  const dp = await api<{ ipcache: Record<string, number> }>('GET', '/v1/datapath');
  return new Set(Object.keys(dp.ipcache).map((k) => k.replace(/\/32$/, '')));
}

function portOf(url: string): number {
  return url.startsWith('https:') ? 443 : 80;
}

/** Kernel drops of mediabot's connections to `ips` on `port`, from the agent's flow ring. */
async function kernelDrops(ips: readonly string[], port: number): Promise<Flow[]> {
  const flows = await api<Flow[]>('GET', '/v1/flows?last=5000');
  return flows.filter(
    (f) =>
      f.verdict === 'DROPPED' &&
      f.Type === 'L3_L4' &&
      f.source.pod_name === POD &&
      ips.includes(f.IP?.destination ?? '') &&
      f.l4 !== undefined &&
      'TCP' in f.l4 &&
      flowPorts(f)?.destination_port === port,
  );
}

export async function runMediabotDemo(opts: { keep: boolean }): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('the demo builds network namespaces and loads BPF programs: run it as root\n');
    return 2;
  }
  const out = (s = ''): boolean => process.stdout.write(`${s}\n`);
  let failures = 0;
  const expect = (ok: boolean, what: string): void => {
    if (!ok) failures++;
    out(`   ${ok ? '✔' : '✘'} ${what}`);
  };

  // A resident agent, a kept Star Wars demo, or another mediabot demo still running.
  const busy = await agentServing([DEFAULT_API_SOCKET, STARWARS_SOCKET, SOCKET]);
  if (busy) {
    process.stderr.write(`an agent is already serving ${busy}; stop it before running the demo, which uses ${DEMO_PIN_ROOT}\n`);
    return 2;
  }

  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(join(WORK, 'policies'), { recursive: true, mode: 0o700 });
  if (readLabState(LAB)) await labDownCommand(LAB, SOCKET).catch(() => undefined);

  const { agent, client } = await startDemoAgent(WORK, SOCKET, out);
  try {
    out();
    out('== Creating the lab from deploy/lab/mediabot.yaml (mediabot, kube-dns running dnsmasq, the world) ==');
    await labUpCommand(join(ROOT, 'deploy/lab/mediabot.yaml'), SOCKET);
    out();

    for (const scene of SCENES) {
      out(`== ${scene.title} ==`);
      for (const file of scene.imports ?? []) {
        out(`$ membrane policy import deploy/lab/mediabot/${file}`);
        const r = cli(['policy', 'import', join(ROOT, 'deploy/lab/mediabot', file)]);
        out((r.stdout + r.stderr).trimEnd());
        if (r.status !== 0) throw new Error(`policy import ${file} exited ${r.status}`);
      }
      for (const name of scene.digs ?? []) {
        out(`$ membrane lab exec ${POD} -- dig +short ${name}`);
        const r = spawnSync('ip', ['netns', 'exec', POD, 'dig', '+short', name], { encoding: 'utf8' });
        out((r.stdout ?? '').trimEnd());
        expect(lookup(name).length > 0, `${name} resolves through the kube-dns pod`);
      }
      for (const probe of scene.probes) {
        out(`$ membrane lab exec ${POD} -- curl -I -s --max-time ${MAX_TIME} ${probe.url} | head -1`);
        const r = curlHead(probe.url);
        if (r.line) out(r.line);
        if (probe.expect !== 'blocked') {
          if (!r.line) out(`(no answer: curl exit ${r.curlExit})`);
          expect(r.line === probe.expect, probe.says);
          continue;
        }
        out(r.curlExit === 28 ? '(no answer: connection timed out)' : `(curl exit ${r.curlExit})`);
        // The reference's "blocked": the lookup is allowed, the connection is not.
        const ips = lookup(new URL(probe.url).hostname);
        const drops = ips.length > 0 ? await kernelDrops(ips, portOf(probe.url)) : [];
        expect(
          r.line === '' && r.curlExit === 28 && ips.length > 0 && drops.length > 0,
          `${probe.says} (${ips.join(', ') || 'did not resolve'}; ${drops.length} kernel drop(s) to port ${portOf(probe.url)})`,
        );
      }
      await scene.check?.({ out, expect });
      out();
    }

    out(`== Kernel drops (membrane observe --pod default/${POD} --verdict DROPPED) ==`);
    const dropped = cli(['observe', '--last', '1000', '--pod', `default/${POD}`, '--verdict', 'DROPPED']);
    out(dropped.stdout.trimEnd());
    expect(dropped.status === 0 && /Policy denied DROPPED \(TCP Flags: SYN\)/.test(dropped.stdout), 'the blocked connections are policy drops of their SYNs');
    out();

    out(`== DNS flows (membrane observe --pod default/${POD} --protocol dns) ==`);
    const flows = await api<Flow[]>('GET', '/v1/flows?last=5000');
    const dns = flows.filter((f) => f.l7?.dns && (f.source.pod_name === POD || f.destination.pod_name === POD));
    const printer = new FlowPrinter(output('compact'), withWriter(process.stdout));
    // The whole exchange is long (the search list adds lookups): show the GitHub names.
    for (const f of dns.filter((f) => /github\.com\.$/.test(f.l7?.dns?.query ?? ''))) printer.write(f);
    expect(
      dns.some((f) => f.l7?.type === 'REQUEST' && f.verdict === 'FORWARDED' && f.l7.dns?.query === 'api.github.com.'),
      'the lookups of api.github.com appear as dns-request FORWARDED flows',
    );
    const apiIps = lookup('api.github.com');
    expect(
      dns.some((f) => f.l7?.type === 'RESPONSE' && f.l7.dns?.query === 'api.github.com.' && apiIps.every((ip) => f.l7?.dns?.ips?.includes(ip))),
      `and their answers as dns-response flows carrying ${apiIps.join(', ')}`,
    );
    out();
  } catch (err) {
    failures++;
    out(`demo failed: ${(err as Error).message}`);
    out(`agent log: ${join(WORK, 'agent.log')}`);
  }
  return finishDemo({ lab: LAB, socket: SOCKET, keep: opts.keep, agent, client, failures }, out);
}
