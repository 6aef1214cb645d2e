/**
 * The real Membrane agent (dist/cli/main.js, same argv as `membrane …`) with one addition for the
 * DNS benchmark: it subscribes to the DNS proxy's `membrane:dnsproxy:done` diagnostics channel and
 * keeps each relayed answer's release delay — the time the proxy held the answer waiting for
 * `onAnswer` (NameManager → Regenerator.applyFqdn map writes), measured by the proxy itself
 * (`DnsExchange.releaseDelayNs`). The bench asks for them over the IPC channel:
 *
 *   'release' → { release: number[] }  delays in µs since the last ask (at most MAX_SAMPLES kept)
 *   { profile: 'start' } / { profile: 'stop', file } → { profiled: file }  a CPU profile of the agent
 *     between the two (node:inspector; `--cpu-prof` cannot be used: its SIGPROF sampling interrupts
 *     the BPF verifier at start-up, which then fails the load with EAGAIN)
 *
 * nsenter execs node, so the IPC descriptor the bench opened reaches this process unchanged.
 */
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MAX_SAMPLES = 1_000_000;
let samples: number[] = [];

subscribe('membrane:dnsproxy:done', (message) => {
  const ns = (message as { exchange?: { releaseDelayNs?: bigint } }).exchange?.releaseDelayNs;
  if (ns !== undefined && samples.length < MAX_SAMPLES) samples.push(Number(ns) / 1000);
});

if (process.send) {
  let session: Session | null = null;
  process.on('message', (m) => {
    if (m === 'release') {
      const out = samples;
      samples = [];
      process.send?.({ release: out });
      return;
    }
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
