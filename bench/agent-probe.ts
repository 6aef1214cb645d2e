/**
 * The real Membrane agent (dist/cli/main.js, same argv as `membrane …`) with one addition for the
 * benchmarks: CPU profiles of the agent's own thread on request over the IPC channel:
 *
 *   { profile: 'start' } / { profile: 'stop', file } → { profiled: file }  a CPU profile of the agent
 *     between the two (node:inspector; `--cpu-prof` cannot be used: its SIGPROF sampling interrupts
 *     the BPF verifier at start-up, which then fails the load with EAGAIN)
 *
 * nsenter execs node, so the IPC descriptor the bench opened reaches this process unchanged.
 * (The DNS answer-release delays come from the access log: proxy workers run in threads of
 * their own, where a diagnostics channel of this thread does not reach.)
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (process.send) {
  let session: Session | null = null;
  process.on('message', (m) => {
    const p = m as { profile?: string; file?: string };
    void (async () => {
      if (p.profile === 'start') {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      } else if (p.profile === 'stop' && session && p.file) {
        const { profile } = await session.post('Profiler.stop');
        writeFileSync(p.file, JSON.stringify(profile));
        session.disconnect();
        session = null;
        process.send?.({ profiled: p.file });
      }
    })();
  });
  // The IPC channel must not keep the agent alive once it decides to stop.
  process.channel?.unref();
}

// dist-bench/bench/agent-probe.js → the agent the README's commands run.
await import(pathToFileURL(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))).href);
