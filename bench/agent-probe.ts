/**
 * The real Membrane agent (dist/cli/main.js, same argv as `membrane …`) with one addition for the
 * benchmarks: CPU profiles of the agent's own thread on request over the IPC channel:
 *
 *   { profile: 'start' } / { profile: 'stop', file } → { profiled: file }  a CPU profile of the agent
 *     between the two, and one per worker thread (the proxy workers) in `file`.worker-N.cpuprofile
 *     (node:inspector; `--cpu-prof` cannot be used: its SIGPROF sampling interrupts the BPF
 *     verifier at start-up, which then fails the load with EAGAIN)
 *
 * nsenter execs node, so the IPC descriptor the bench opened reaches this process unchanged.
 * (The DNS answer-release delays come from the access log: proxy workers run in threads of
 * their own, where a diagnostics channel of this thread does not reach.)
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The agent's worker threads (the proxy workers), profiled through the inspector's NodeWorker
 * domain from this thread: each worker gets its own Profiler, driven by messages relayed to it.
 */
class WorkerProfiles {
  readonly #session: Session;
  readonly #workers = new Map<string, { title: string; started: Promise<unknown> }>();
  readonly #pending = new Map<number, (m: { result?: { profile?: unknown } }) => void>();
  #next = 1;

  constructor(session: Session) {
    this.#session = session;
    session.on('NodeWorker.attachedToWorker', (m) => {
      const { sessionId, workerInfo } = (m as unknown as { params: { sessionId: string; workerInfo: { title: string } } }).params;
      this.#workers.set(sessionId, { title: workerInfo.title, started: this.#send(sessionId, 'Profiler.enable').then(() => this.#send(sessionId, 'Profiler.start')) });
    });
    session.on('NodeWorker.receivedMessageFromWorker', (m) => {
      const msg = JSON.parse((m as unknown as { params: { message: string } }).params.message) as { id?: number; result?: { profile?: unknown } };
      if (msg.id === undefined) return;
      this.#pending.get(msg.id)?.(msg);
      this.#pending.delete(msg.id);
    });
  }

  start(): Promise<unknown> {
    return this.#session.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
  }

  /** Stops every worker's profile; `file`.worker-N.cpuprofile per worker (N from 1, attach order). */
  async stop(file: string): Promise<void> {
    let n = 0;
    for (const [sessionId, w] of this.#workers) {
      n++;
      await w.started;
      const r = await this.#send(sessionId, 'Profiler.stop');
      if (r.result?.profile) writeFileSync(`${file}.worker-${n}.cpuprofile`, JSON.stringify(r.result.profile));
    }
    await this.#session.post('NodeWorker.disable');
  }

  #send(sessionId: string, method: string): Promise<{ result?: { profile?: unknown } }> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      void this.#session.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params: {} }) });
    });
  }
}

if (process.send) {
  let session: Session | null = null;
  let workers: WorkerProfiles | null = null;
  process.on('message', (m) => {
    const p = m as { profile?: string; file?: string };
    void (async () => {
      if (p.profile === 'start') {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
        workers = new WorkerProfiles(session);
        await workers.start();
      } else if (p.profile === 'stop' && session && p.file) {
        const { profile } = await session.post('Profiler.stop');
        writeFileSync(p.file, JSON.stringify(profile));
        await workers?.stop(p.file);
        session.disconnect();
        session = null;
        workers = null;
        process.send?.({ profiled: p.file });
      }
    })();
  });
  // The IPC channel must not keep the agent alive once it decides to stop.
  process.channel?.unref();
}

// dist-bench/bench/agent-probe.js → the agent the README's commands run.
await import(pathToFileURL(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))).href);
