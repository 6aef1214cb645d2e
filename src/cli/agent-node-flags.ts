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
 * Not allowed in NODE_OPTIONS, so they go on the command line.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** `execArgv` with the agent's flags it lacks appended (for a re-execution of this process). */
export function withAgentNodeFlags(execArgv: readonly string[]): string[] {
  return [...execArgv, ...AGENT_NODE_FLAGS.filter((f) => !execArgv.includes(f))];
}
