/**
 * issue-9 isolation: the proxy worker threads run above the agent's CPU priority (a lower nice,
 * per thread), so the control plane's work under churn does not make a request wait for a core;
 * the agent's own thread keeps its priority. Real worker threads (dist/proxyworker/worker.js:
 * build first); no snapshot is sent, so they never listen.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { threadNice } from '../../../src/datapath/index.js';
import { availableParallelism } from 'node:os';
import { DEFAULT_PROXY_WORKER_PRIORITY, defaultWorkerPriority, ProxyWorkerPool, type WorkerStatus } from '../../../src/proxyworker/pool.js';

const log = pino({ level: 'silent' });
const base = threadNice();
let pool: ProxyWorkerPool | null = null;
afterEach(async () => {
  await pool?.close(0);
  pool = null;
});

function makePool(workerPriority?: number): ProxyWorkerPool {
  return new ProxyWorkerPool({
    workers: 1,
    init: {
      nodeName: 'test-node',
      pinRoot: '/nonexistent',
      httpProxyPort: 1,
      tlsProxyPort: 2,
      dnsProxyPort: 3,
      httpRequestTimeoutMs: 1000,
      httpNormalizePath: true,
      dnsRejectResponseCode: 'refused',
      answerMaxDelayMs: 100,
      accessLogFormat: 'file',
      logLevel: 'silent',
      maxQueued: 1024,
    },
    endpoints: () => [],
    identities: () => [],
    flowEndpoint: (_ip, identity) => ({ ID: 0, identity, namespace: '', labels: [], pod_name: '' }),
    onFlows: () => undefined,
    onLines: () => undefined,
    onAnswer: async () => undefined,
    log,
    ...(workerPriority === undefined ? {} : { workerPriority }),
  });
}

/** The first worker's counters as `membrane status` shows them, once it answers. */
async function workerStatus(p: ProxyWorkerPool): Promise<WorkerStatus> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const [w] = await p.status();
    if (w?.counters) return w;
    if (Date.now() > deadline) throw new Error('the proxy worker did not report its counters in 15 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Nice values (field 19 of /proc/self/task/TID/stat) of this process's threads other than the main one. */
function otherThreadsNice(): number[] {
  return readdirSync('/proc/self/task')
    .filter((tid) => Number(tid) !== process.pid)
    .flatMap((tid) => {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
      } catch {
        return [];
      }
    });
}

describe('issue-9 proxy worker priority', () => {
  // Raising a thread's priority needs CAP_SYS_NICE: root here and in CI.
  const canRaise = process.getuid?.() === 0 || Boolean(process.env.CI);

  it('by default the workers are raised only while they leave a CPU to the agent\'s thread', () => {
    expect(defaultWorkerPriority(1, 2)).toBe(DEFAULT_PROXY_WORKER_PRIORITY);
    expect(defaultWorkerPriority(7, 16)).toBe(DEFAULT_PROXY_WORKER_PRIORITY);
    expect(defaultWorkerPriority(2, 2)).toBe(0);
    expect(defaultWorkerPriority(8, 4)).toBe(0);
  });

  it.skipIf(!canRaise || availableParallelism() < 2)(`one worker on a node of ${availableParallelism()} CPUs runs ${DEFAULT_PROXY_WORKER_PRIORITY} nice steps above the agent; the agent's thread keeps its own`, async () => {
    pool = makePool();
    pool.spawn();
    const w = await workerStatus(pool);
    const want = Math.max(-20, base - DEFAULT_PROXY_WORKER_PRIORITY);
    expect(w.counters!.nice).toBe(want);
    // The kernel sees it too: one of this process's threads runs at that nice.
    expect(otherThreadsNice()).toContain(want);
    expect(threadNice()).toBe(base);
  });

  it('workerPriority 0 leaves the worker at the agent\'s priority', async () => {
    pool = makePool(0);
    pool.spawn();
    const w = await workerStatus(pool);
    expect(w.counters!.nice).toBe(base);
  });

  it('a workerPriority outside 0…20 is refused', () => {
    expect(() => makePool(-1)).toThrow(RangeError);
    expect(() => makePool(21)).toThrow(RangeError);
  });
});
