/**
 * issue-9 a proxy worker releases a DNS answer without the agent only when the agent confirmed
 * every (name, IP) of it in the datapath in the current FQDN epoch, with TTL to spare
 * (src/proxyworker/known-answers.ts): anything else takes the round trip, so no answer reaches a
 * pod before its IPs are in the ipcache and policy maps.
 */
import { describe, expect, it } from 'vitest';
import { GUARD_MS, KnownAnswers } from '../../../src/proxyworker/known-answers.js';

const T0 = 1_000_000;

describe('KnownAnswers', () => {
  it('an answer the agent never confirmed takes the round trip', () => {
    const k = new KnownAnswers();
    expect(k.take('api.example.com', ['10.0.0.1'], 300, T0)).toBe(false);
  });

  it('a repeat of a confirmed answer is released at once, its name compared without case or final dot', () => {
    const k = new KnownAnswers();
    k.confirm('api.example.com', ['10.0.0.1', '10.0.0.2'], 300, T0, 0);
    expect(k.take('API.Example.com.', ['10.0.0.2', '10.0.0.1'], 300, T0 + 1000)).toBe(true);
    expect(k.take('api.example.com', ['10.0.0.1'], 300, T0 + 1000)).toBe(true);
    expect(k.fastReleases).toBe(2);
  });

  it('an answer with one IP not confirmed for that name takes the round trip', () => {
    const k = new KnownAnswers();
    k.confirm('api.example.com', ['10.0.0.1'], 300, T0, 0);
    k.confirm('other.example.com', ['10.0.0.9'], 300, T0, 0);
    expect(k.take('api.example.com', ['10.0.0.1', '10.0.0.9'], 300, T0)).toBe(false);
    expect(k.take('other.example.com', ['10.0.0.1'], 300, T0)).toBe(false);
  });

  it('a newer epoch from the agent forgets every confirmed answer', () => {
    const k = new KnownAnswers();
    k.confirm('api.example.com', ['10.0.0.1'], 300, T0, 3);
    k.seeEpoch(4);
    expect(k.take('api.example.com', ['10.0.0.1'], 300, T0)).toBe(false);
    expect(k.size).toBe(0);
  });

  it('a confirmation from an epoch older than one already seen is not used', () => {
    const k = new KnownAnswers();
    k.seeEpoch(5);
    k.confirm('api.example.com', ['10.0.0.1'], 300, T0, 4);
    expect(k.take('api.example.com', ['10.0.0.1'], 300, T0)).toBe(false);
    // and a confirmation carrying a newer epoch adopts it
    k.confirm('api.example.com', ['10.0.0.1'], 300, T0, 6);
    expect(k.epoch).toBe(6);
    expect(k.take('api.example.com', ['10.0.0.1'], 300, T0)).toBe(true);
  });

  it('a name close to its expiry in the agent takes the round trip (a DNS GC may be removing it)', () => {
    const k = new KnownAnswers();
    k.confirm('api.example.com', ['10.0.0.1'], 10, T0, 0);
    expect(k.take('api.example.com', ['10.0.0.1'], 10, T0 + 10_000 - GUARD_MS)).toBe(false);
    // the release moves the expiry on: the refresh it sends keeps the name cached
    expect(k.take('api.example.com', ['10.0.0.1'], 10, T0 + 1000)).toBe(true);
    expect(k.take('api.example.com', ['10.0.0.1'], 10, T0 + 8500)).toBe(true);
  });

  it('answers with a TTL shorter than the guard, or no IPs, are never released unasked', () => {
    const k = new KnownAnswers();
    k.confirm('api.example.com', ['10.0.0.1'], 1, T0, 0);
    expect(k.take('api.example.com', ['10.0.0.1'], 1, T0)).toBe(false);
    k.confirm('zero.example.com', ['10.0.0.2'], 0, T0, 0);
    expect(k.take('zero.example.com', ['10.0.0.2'], 300, T0)).toBe(false);
    expect(k.take('api.example.com', [], 300, T0)).toBe(false);
  });

  it('is bounded: past max pairs the least recently used are forgotten', () => {
    const k = new KnownAnswers(2);
    k.confirm('a.example.com', ['10.0.0.1'], 300, T0, 0);
    k.confirm('b.example.com', ['10.0.0.2'], 300, T0, 0);
    k.confirm('c.example.com', ['10.0.0.3'], 300, T0, 0);
    expect(k.size).toBe(2);
    expect(k.take('a.example.com', ['10.0.0.1'], 300, T0)).toBe(false);
    expect(k.take('c.example.com', ['10.0.0.3'], 300, T0)).toBe(true);
  });
});
