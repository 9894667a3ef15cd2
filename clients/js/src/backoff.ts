export interface BackoffOptions {
  /** Ceiling of the first retry's delay; later ceilings double. Default 500 ms. */
  initialMs?: number;
  /** Largest ceiling. Default 20 000 ms. */
  maxMs?: number;
}

/**
 * Exponential backoff with full jitter: each delay is uniform between 0
 * and a ceiling that doubles per attempt, so a crowd dropped at once by a
 * server restart does not come back at once.
 */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 20_000;
    if (!(this.initialMs > 0 && this.maxMs >= this.initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs <= maxMs, got ${this.initialMs} and ${this.maxMs}`);
    }
  }

  /** The delay before the next attempt; each call counts as one attempt. */
  next(): number {
    // Past 2^30 the product is beyond any sane cap; stop the exponent there.
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.floor(this.random() * ceiling);
  }

  /** After a successful connection the next failure starts fast again. */
  reset(): void {
    this.attempt = 0;
  }
}
