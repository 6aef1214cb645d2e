/**
 * Node.js flags the agent runs with when Membrane starts it: bin/membrane (`membrane agent`), the
 * demos, the tests' harness, the benchmarks and the agent's own re-execution into its network
 * namespace. `node dist/cli/main.js agent` run by hand without `--netns` does without them.
 *
 * `--single-threaded-gc`: V8 collects each isolate's garbage on that isolate's own thread, with
 * no parallel or concurrent helper threads. The proxy workers are where requests are served, and
 * each allocates for every request; with helpers, a scavenge of one thread spread over every core,
 * taking CPU from the other proxy workers, the kernel and the pods. Measured (issue 9, wrk paced at
 * 2000 req/s through the transparent L7 path, 2 cores, 1 proxy worker, 5 alternating pairs of
 * fresh agents): the agent's CPU per request 240–271 µs with the flag vs 289–331 µs without, p50
 * 0.52–0.62 ms vs 0.72–0.84 ms. bin/membrane, a shell script, lists the same flags (a unit test
 * compares them).
 *
 * `--max-semi-space-size=2` (MB): the agent's own thread gets a small young generation. It releases
 * DNS answers, takes in flows and serves the API; with V8's default (16 MB semi-spaces) each of its
 * scavenges copied several MB of survivors (flows held in the ring, the FQDN cache growing) in one
 * 12–34 ms pause, and the answers waiting on the thread waited that long. The flag is process-wide
 * but read when an isolate is created: the proxy worker pool clears it before it starts workers
 * (src/proxyworker/pool.ts), so they keep V8's default. Measured (issue 9, DNS bench, 1,000 new-IP
 * answers/s, 3 runs): answer-release p99 2.7–3.9 ms with it, 5.5–13.2 ms without; 1 MB was worse
 * (2.5–15.1 ms: more is promoted, and old-generation collections pause longer).
 *
 * Not allowed in NODE_OPTIONS (--single-threaded-gc), so they go on the command line.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--max-semi-space-size=2'];

/** `execArgv` with the agent's flags it lacks appended (for a re-execution of this process). */
export function withAgentNodeFlags(execArgv: readonly string[]): string[] {
  return [...execArgv, ...AGENT_NODE_FLAGS.filter((f) => !execArgv.includes(f))];
}
