import { vi } from 'vitest';
import { Client, type ClientOptions, type ConnectionState, type SocketLike } from '../../src/index.js';

interface Frame {
  event: string;
  id?: string;
  data: Record<string, unknown>;
}

/** One fake WebSocket: what the client wrote, and a way to answer it. */
export class FakeSocket implements SocketLike {
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  readonly sent: Frame[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;

  constructor(readonly url: string) {}

  send(text: string): void {
    this.sent.push(JSON.parse(text) as Frame);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
  }

  /** The server sends a frame. */
  push(event: string, data: Record<string, unknown>, id?: string): void {
    this.onmessage?.({ data: JSON.stringify(id === undefined ? { event, data } : { event, id, data }) });
  }

  /** The connection ends (1006: no close frame). */
  drop(code = 1006, reason = ''): void {
    this.onclose?.({ code, reason });
  }

  last(event: string): Frame {
    const frame = [...this.sent].reverse().find((f) => f.event === event);
    if (frame === undefined) throw new Error(`nothing sent as ${event}; sent: ${JSON.stringify(this.sent)}`);
    return frame;
  }

  /** Answers the last `event` request with `reply`. */
  answer(event: string, reply: string, data: Record<string, unknown>): void {
    this.push(reply, data, this.last(event).id);
  }

  /** Greets the client as the server does on upgrade. */
  hello(clientId: string, resumeToken: string): void {
    this.push('connected', { clientId, protocol: 1, heartbeatMs: 30000, resumeToken });
  }
}

/** Lets promises and zero-delay timers run. */
export const tick = (): Promise<void> => vi.advanceTimersByTimeAsync(0).then(() => undefined);

/** A client on fake sockets, and the sockets it opened, newest last. */
export function fakeClient(options: Partial<ClientOptions> = {}) {
  const sockets: FakeSocket[] = [];
  const states: ConnectionState[] = [];
  const client = new Client({
    url: 'ws://switchboard.test/ws',
    WebSocket: class extends FakeSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    },
    ...options,
  });
  client.on('state', (s) => states.push(s));
  const socket = (): FakeSocket => {
    const last = sockets.at(-1);
    if (last === undefined) throw new Error('no socket opened');
    return last;
  };
  return { client, sockets, states, socket };
}

/** Connects a fake client as `clientId` (token `t1`) and returns it ready. */
export async function connected(options: Partial<ClientOptions> = {}, clientId = 'a1') {
  const fake = fakeClient({ token: 't1', ...options });
  const ready = fake.client.connect();
  fake.socket().hello(clientId, `resume-${clientId}`);
  await tick();
  fake.socket().answer('auth:request', 'auth:response', { success: true, userId: 'alice' });
  await ready;
  return fake;
}
