/**
 * issue-9 isolation: the agent's control-plane work runs at a lower CPU priority (nice) than its
 * proxy threads, on its own thread only, and the thread returns to its priority in between.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Worker } from 'node:worker_threads';
import { ControlPlanePriority } from '../../../src/agent/priority.js';
import { setThreadNice, threadNice } from '../../../src/datapath/index.js';

const base = threadNice();
afterEach(() => setThreadNice(base));
const log = pino({ level: 'silent' });

/** The nice value of a thread started now (threads inherit their creator's). */
async function niceOfNewThread(): Promise<number> {
  const w = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const addon = require(${JSON.stringify(new URL('../../../native/build/Release/membrane_native.node', import.meta.url).pathname)});
     parentPort.postMessage(addon.threadNiceValue());`,
    { eval: true },
  );
  const [v] = (await Promise.all([new Promise((r) => w.once('message', r)), new Promise((r) => w.once('exit', r))])) as unknown as [number, unknown];
  return v;
}

describe('issue-9 control-plane priority', () => {
  it('runs the work at base + nice (capped at 19), nested calls once, and returns to the base after it, even when it throws', () => {
    const p = new ControlPlanePriority(10, log);
    expect(p.nice).toBe(Math.min(19, base + 10));
    const seen: number[] = [];
    p.run(() => {
      seen.push(threadNice());
      p.run(() => seen.push(threadNice()));
      seen.push(threadNice());
    });
    expect(seen).toEqual([p.nice, p.nice, p.nice]);
    expect(threadNice()).toBe(base);
    expect(() => p.run(() => { throw new Error('boom'); })).toThrow('boom');
    expect(threadNice()).toBe(base);
  });

  it('0 changes nothing', () => {
    const p = new ControlPlanePriority(0, log);
    expect(p.run(() => threadNice())).toBe(base);
    expect(p.nice).toBe(base);
  });

  it('between runs, threads the agent starts (a restarted proxy worker) get its own priority, not the control plane\'s', async () => {
    const p = new ControlPlanePriority(5, log);
    p.run(() => undefined);
    expect(await niceOfNewThread()).toBe(base);
  });
});
