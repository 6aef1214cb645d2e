/**
 * `membrane demo starwars`: Cilium's Star Wars walkthrough on this machine. Starts an agent
 * in its own node namespace, builds the lab, runs each step with curl inside the pods,
 * checks every outcome against what Cilium gives, prints the flows, and tears down.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowPrinter, output, withWriter, type Flow } from '../observe/index.js';
import { readLabState } from '../lab/index.js';
import { AgentClient, DEFAULT_API_SOCKET } from './client.js';
import { labDownCommand, labUpCommand } from './lab-command.js';
import { agentServing, DEMO_PIN_ROOT, finishDemo, startDemoAgent } from './demo-agent.js';
import { importPolicyFile } from './policy-files.js';
import { runMediabotDemo } from './demo-mediabot.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const WORK = '/run/membrane/demo';
const SOCKET = join(WORK, 'agent.sock');
const SERVICE = 'deathstar.default.svc.cluster.local';

type Expectation = 'lands' | 'times out' | 'access denied';

interface SceneContext {
  client: AgentClient;
  out: (s?: string) => boolean;
  expect: (ok: boolean, what: string) => void;
}

/** One step of the reference walkthrough: policies to apply, curls to run, what each must give. */
interface Scene {
  title: string;
  imports?: string[];
  probes: { pod: string; method: string; path: string; expect: Expectation; says: string }[];
  check?: (ctx: SceneContext) => Promise<void>;
  deletes?: string[];
}

const LAND = '/v1/request-landing';
const EXHAUST = '/v1/exhaust-port';

/** The walkthrough of ../shared/reference/cilium-overview-and-starwars-demo.txt, in order. */
const SCENES: Scene[] = [
  {
    title: '1. No policy: every ship may land',
    probes: [
      { pod: 'xwing', method: 'POST', path: LAND, expect: 'lands', says: 'xwing lands' },
      { pod: 'tiefighter', method: 'POST', path: LAND, expect: 'lands', says: 'tiefighter lands' },
    ],
  },
  {
    title: '2. L3/L4 policy rule1: only org=empire may reach deathstar:80',
    imports: ['sw_l3_l4_policy.yaml'],
    probes: [
      { pod: 'tiefighter', method: 'POST', path: LAND, expect: 'lands', says: 'tiefighter lands' },
      { pod: 'xwing', method: 'POST', path: LAND, expect: 'times out', says: 'xwing times out: dropped in the kernel' },
    ],
    check: async ({ client, out, expect }) => {
      out('$ membrane endpoint list');
      const list = spawnSync(process.execPath, [CLI, '--api-socket', SOCKET, 'endpoint', 'list'], { encoding: 'utf8' });
      out(list.stdout.trimEnd());
      const eps = await client.request<{ name: string; ingressEnforcement: boolean }[]>('GET', '/v1/endpoints');
      expect(eps.every((e) => e.ingressEnforcement === (e.name === 'deathstar')), 'ingress enforcement Enabled for deathstar only');
    },
  },
  {
    title: '2b. The service-based variant: rule1 lets tiefighter reach the deathstar service, rule2 denies xwing',
    imports: ['sw_l3_l4_policy_service.yaml'],
    probes: [
      { pod: 'tiefighter', method: 'POST', path: LAND, expect: 'lands', says: 'tiefighter lands' },
      { pod: 'xwing', method: 'POST', path: LAND, expect: 'times out', says: "xwing times out: denied by rule2's egressDeny" },
    ],
    deletes: ['rule2'],
  },
  {
    title: '3. L7 policy rule1: empire ships may only POST /v1/request-landing',
    imports: ['sw_l3_l4_l7_policy.yaml'],
    probes: [
      { pod: 'tiefighter', method: 'POST', path: LAND, expect: 'lands', says: 'tiefighter lands' },
      { pod: 'tiefighter', method: 'PUT', path: EXHAUST, expect: 'access denied', says: 'tiefighter PUT /v1/exhaust-port gets 403 Access denied' },
      { pod: 'xwing', method: 'POST', path: LAND, expect: 'times out', says: 'xwing still times out' },
    ],
    check: async ({ expect }) => {
      const serverLog = readLabState('starwars')?.pods.find((p) => p.name === 'deathstar')?.log;
      const seen = serverLog && existsSync(serverLog) ? readFileSync(serverLog, 'utf8') : '';
      expect(!seen.includes(EXHAUST), 'deathstar never saw the PUT');
    },
  },
];

interface Outcome {
  readonly text: string;
  readonly timedOut: boolean;
  readonly status: number;
}

function curl(pod: string, method: string, path: string): Outcome {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', pod, 'curl', '-s', '--max-time', '2', '-o', '-', '-w', '\n%{http_code}', '-X', method, `http://${SERVICE}${path}`],
    { encoding: 'utf8' },
  );
  const lines = r.stdout.split('\n');
  const status = Number(lines.pop() ?? '0');
  return { text: lines.join('\n').replace(/\r?\n$/, ''), timedOut: r.status === 28, status };
}

export async function runDemo(name: string, opts: { keep: boolean }): Promise<number> {
  if (name === 'mediabot') return runMediabotDemo(opts);
  if (name !== 'starwars') {
    process.stderr.write(`unknown demo ${name}; available: starwars, mediabot\n`);
    return 2;
  }
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

  const busy = await agentServing([DEFAULT_API_SOCKET]);
  if (busy) {
    process.stderr.write(`an agent is already serving ${busy}; stop it before running the demo, which uses ${DEMO_PIN_ROOT}\n`);
    return 2;
  }

  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(join(WORK, 'policies'), { recursive: true, mode: 0o700 });
  const stale = readLabState('starwars');
  if (stale) await labDownCommand('starwars', SOCKET).catch(() => undefined);

  const { agent, client } = await startDemoAgent(WORK, SOCKET, out);
  try {
    out();
    out('== Creating the lab from deploy/lab/starwars.yaml ==');
    await labUpCommand(join(ROOT, 'deploy/lab/starwars.yaml'), SOCKET);
    out();

    for (const scene of SCENES) {
      out(`== ${scene.title} ==`);
      for (const file of scene.imports ?? []) {
        out(`$ membrane policy import deploy/lab/starwars/${file}`);
        const r = await importPolicyFile(client, join(ROOT, 'deploy/lab/starwars', file));
        out(`Imported ${r.policies.join(', ')}, revision ${r.revision}`);
      }
      for (const probe of scene.probes) {
        out(`$ membrane lab exec ${probe.pod} -- curl -s -X${probe.method} ${SERVICE}${probe.path}`);
        const r = curl(probe.pod, probe.method, probe.path);
        out(r.timedOut ? '(no answer: connection timed out)' : r.text);
        const ok =
          probe.expect === 'lands' ? r.text === 'Ship landed' : probe.expect === 'times out' ? r.timedOut : r.text === 'Access denied' && r.status === 403;
        expect(ok, probe.says);
      }
      await scene.check?.({ client, out, expect });
      for (const name of scene.deletes ?? []) {
        out(`$ membrane policy delete ${name}`);
        await client.request('DELETE', `/v1/policy?name=${encodeURIComponent(name)}`);
      }
      out();
    }

    out('== Flows observed (membrane observe --verdict DROPPED, then --protocol http) ==');
    const printer = new FlowPrinter(output('compact'), withWriter(process.stdout));
    const flows = await client.request<Flow[]>('GET', `/v1/flows?last=200`);
    const shown = flows.filter((f) => f.verdict === 'DROPPED' || f.Type === 'L7');
    for (const f of shown) printer.write(f);
    expect(shown.some((f) => f.Type === 'L7' && f.verdict === 'DROPPED'), 'the denied PUT appears as an http-request DROPPED flow');
    expect(shown.some((f) => f.Type === 'L3_L4' && f.drop_reason_desc === 'POLICY_DENIED'), 'xwing\'s SYNs appear as POLICY_DENIED drops (default deny)');
    expect(shown.some((f) => f.Type === 'L3_L4' && f.drop_reason_desc === 'POLICY_DENY'), 'and as POLICY_DENY drops under rule2 (deny rule)');
    out();
  } catch (err) {
    failures++;
    out(`demo failed: ${(err as Error).message}`);
    out(`agent log: ${join(WORK, 'agent.log')}`);
  }
  return finishDemo({ lab: 'starwars', socket: SOCKET, keep: opts.keep, agent, client, failures }, out);
}
