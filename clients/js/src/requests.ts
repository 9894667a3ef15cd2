import type { Envelope, ErrorData } from './protocol.js';
import { RateLimitedError, SwitchboardError, TimeoutError } from './errors.js';

interface Pending {
  event: string;
  resolve: (envelope: Envelope) => void;
  reject: (error: SwitchboardError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** Requests the client makes for itself (auth, resume, rejoin) belong to one socket. */
  internal: boolean;
  /** The socket generation it was written on and its place in that socket's order. */
  sentOn?: number;
  seq?: number;
}

/**
 * Requests waiting for their answer, matched by correlation id, and the
 * bookkeeping that lets an id-less `RATE_LIMITED` be pinned on one of them.
 *
 * The server answers a connection's messages in the order sent, and a
 * limited message gets exactly one `RATE_LIMITED` with no `id`
 * (PROTOCOL.md, Order of checks). So such an error answers the oldest
 * message not yet answered. When that is surely a request (no message
 * without an answer, i.e. a relay or a custom event, was sent between the
 * last answered message and that request), the request is rejected with
 * the error. Otherwise which message was dropped is unknowable and the
 * error goes to the client's `error` event.
 */
export class Requests {
  private counter = 0;
  private readonly pending = new Map<string, Pending>();
  private generation = 0;
  private seq = 0;
  private lastAnswered = 0;
  /** Places of the unanswerable messages sent after `lastAnswered`. */
  private unanswerable: number[] = [];

  create(event: string, timeoutMs: number, internal = false): { id: string; promise: Promise<Envelope> } {
    this.counter += 1;
    const id = `c-${this.counter}`;
    const promise = new Promise<Envelope>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(event, timeoutMs, id));
      }, timeoutMs);
      this.pending.set(id, { event, resolve, reject, timer, internal });
    });
    return { id, promise };
  }

  isPending(id: string): boolean {
    return this.pending.has(id);
  }

  /** A new socket starts a new order; answers to older sockets' messages can only come as replays. */
  newSocket(): void {
    this.generation += 1;
    this.seq = 0;
    this.lastAnswered = 0;
    this.unanswerable = [];
  }

  /** Records that a frame was written: a request by its id, anything else with none. */
  sent(id: string | undefined): void {
    this.seq += 1;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (pending === undefined) {
      this.unanswerable.push(this.seq);
    } else {
      pending.sentOn = this.generation;
      pending.seq = this.seq;
    }
  }

  /** Settles the request `envelope` answers; false if it answers none still waiting. */
  settle(envelope: Envelope): boolean {
    const id = envelope.id;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (id === undefined || pending === undefined) return false;
    this.finish(id, pending);
    if (envelope.event === 'error') {
      pending.reject(SwitchboardError.fromServer(envelope.data as unknown as ErrorData, id));
    } else {
      pending.resolve(envelope);
    }
    return true;
  }

  /** Rejects the request an id-less `RATE_LIMITED` answers, if that can be known. */
  rateLimited(message: string): boolean {
    let oldest: [string, Pending] | undefined;
    for (const entry of this.pending) {
      const seq = entry[1].seq;
      if (entry[1].sentOn === this.generation && seq !== undefined && (oldest === undefined || seq < (oldest[1].seq ?? 0))) {
        oldest = entry;
      }
    }
    if (oldest === undefined) return false;
    const [id, pending] = oldest;
    const first = pending.seq ?? 0;
    if (this.unanswerable.some((seq) => seq < first)) return false;
    this.finish(id, pending);
    pending.reject(new RateLimitedError(message, pending.event, id));
    return true;
  }

  /** Rejects the internal requests of the current socket, which has closed. */
  rejectInternal(error: (event: string, id: string) => SwitchboardError): void {
    this.rejectWhere((p) => p.internal, error);
  }

  rejectAll(error: (event: string, id: string) => SwitchboardError): void {
    this.rejectWhere(() => true, error);
  }

  private rejectWhere(which: (p: Pending) => boolean, error: (event: string, id: string) => SwitchboardError): void {
    for (const [id, pending] of [...this.pending]) {
      if (!which(pending)) continue;
      clearTimeout(pending.timer);
      this.pending.delete(id);
      pending.reject(error(pending.event, id));
    }
  }

  private finish(id: string, pending: Pending): void {
    clearTimeout(pending.timer);
    this.pending.delete(id);
    if (pending.sentOn === this.generation && pending.seq !== undefined) {
      this.lastAnswered = Math.max(this.lastAnswered, pending.seq);
      this.unanswerable = this.unanswerable.filter((seq) => seq > this.lastAnswered);
    }
  }
}
