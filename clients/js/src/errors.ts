import type { ErrorData, ServerErrorCode } from './protocol.js';

/**
 * Codes the client itself raises, next to the server's: a request that got
 * no answer in time, one whose connection ended for good, and one sent in a
 * session that could not be resumed.
 */
export type ClientErrorCode = 'TIMEOUT' | 'DISCONNECTED' | 'SESSION_LOST';

export type ErrorCode = ServerErrorCode | ClientErrorCode;

/** Every error the client rejects a request with or emits as `error`. */
export class SwitchboardError extends Error {
  override readonly name: string = 'SwitchboardError';
  readonly code: ErrorCode;
  /** The event that caused it, when known. */
  readonly event: string | undefined;
  /** The correlation id of the request that caused it, when known. */
  readonly requestId: string | undefined;

  constructor(code: ErrorCode, message: string, event?: string, requestId?: string) {
    super(`${code}: ${message}`);
    this.code = code;
    this.event = event;
    this.requestId = requestId;
  }

  static fromServer(data: ErrorData, requestId?: string): SwitchboardError {
    return data.code === 'RATE_LIMITED'
      ? new RateLimitedError(data.message, data.event, requestId)
      : new SwitchboardError(data.code, data.message, data.event, requestId);
  }
}

/** The server dropped a message over the connection's (or an event's) rate. */
export class RateLimitedError extends SwitchboardError {
  override readonly name: string = 'RateLimitedError';
  declare readonly code: 'RATE_LIMITED';

  constructor(message: string, event?: string, requestId?: string) {
    super('RATE_LIMITED', message, event, requestId);
  }
}

/** A request that got no answer within its timeout. */
export class TimeoutError extends SwitchboardError {
  override readonly name: string = 'TimeoutError';
  declare readonly code: 'TIMEOUT';

  constructor(event: string, timeoutMs: number, requestId: string) {
    super('TIMEOUT', `no answer to \`${event}\` within ${timeoutMs} ms`, event, requestId);
  }
}
