import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/index.js';

describe('Backoff', () => {
  it('draws each delay uniformly below a ceiling that doubles from initialMs up to maxMs', () => {
    const top = new Backoff({ initialMs: 500, maxMs: 20_000 }, () => 0.999999);
    const ceilings = Array.from({ length: 10 }, () => top.next());
    expect(ceilings).toEqual([499, 999, 1999, 3999, 7999, 15999, 19999, 19999, 19999, 19999]);
    const bottom = new Backoff({}, () => 0);
    expect(Array.from({ length: 5 }, () => bottom.next())).toEqual([0, 0, 0, 0, 0]);
  });

  it('starts from the first ceiling again after reset', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.5);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([50, 100, 200]);
    backoff.reset();
    expect(backoff.next()).toBe(50);
  });

  it('never overflows after many attempts', () => {
    const backoff = new Backoff({ initialMs: 1, maxMs: 20_000 }, () => 0.5);
    for (let i = 0; i < 2000; i += 1) backoff.next();
    expect(backoff.next()).toBe(10_000);
  });

  it('refuses bounds that make no sense', () => {
    expect(() => new Backoff({ initialMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 5000, maxMs: 100 })).toThrow(RangeError);
  });
});
