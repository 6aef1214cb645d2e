/**
 * The calling thread's scheduling priority, through the native addon (native/src/control.cc).
 * Linux nice is per thread (sched(7)): the agent's control plane can yield to its proxy worker
 * threads without touching them. Threads created later inherit the creator's value.
 */
import { native } from './native.js';

/** The calling thread's nice value (-20…19). */
export function threadNice(): number {
  return native().threadNiceValue();
}

/**
 * Sets the calling thread's nice value (-20…19). Throws the addon's system error (EACCES/EPERM
 * when lowering it below what RLIMIT_NICE allows without CAP_SYS_NICE).
 */
export function setThreadNice(nice: number): void {
  native().threadNice(nice);
}
