import { Backoff, type BackoffOptions } from './backoff.js';
import { decode, encode } from './envelope.js';
import { SwitchboardError } from './errors.js';
import { Emitter } from './events.js';
import {
  CloseCode,
  type AuthResponse,
  type CandidateRelay,
  type Connected,
  type Envelope,
  type ErrorData,
  type IceCandidate,
  type PeerJoined,
  type PeerLeft,
  type Pong,
  type RoomJoined,
  type RoomLeft,
  type RoomState,
  type SdpRelay,
  type SessionResumed,
} from './protocol.js';
import { Requests } from './requests.js';

/** What the client needs of a WebSocket: the browser's and the `ws` package's both fit. */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/**
 * An event handler property, checked bivariantly (as methods are) so that
 * the DOM's `(ev: MessageEvent) => any` and the `ws` package's handlers
 * both fit the few fields the client reads.
 */
type Handler<E> = { bivariant(event: E): void }['bivariant'];

export type SocketConstructor = new (url: string) => SocketLike;

/** Something that fires `online` when the network comes back (a browser's `window`). */
export interface NetworkEvents {
  addEventListener(type: 'online', listener: () => void): void;
  removeEventListener(type: 'online', listener: () => void): void;
}

/** Custom event names mapped to their `data` (see `ChatIncoming` for an example). */
export type EventDataMap = { [event: string]: object };

export interface ClientOptions {
  /** `ws://host/ws` or `wss://host/ws`. */
  url: string;
  /** The token for the first `auth:request`. */
  token?: string;
  /**
   * Called for every `auth:request` (after `token`, if both are given), so
   * that no token is sent twice: a reconnect that cannot resume asks for a
   * fresh one.
   */
  getToken?: () => string | Promise<string>;
  /** Sent as `roomId` in `auth:request`, checked against the token's `room` claim. */
  authRoomId?: string;
  /** The WebSocket class; defaults to the global one (Node 20 has none: pass `ws`). */
  WebSocket?: SocketConstructor;
  /** How long a request waits for its answer, from the call on. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** How long a connection attempt may take until it is ready (resumed or authenticated). Default 10 000 ms. */
  connectTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Where `online` events come from; defaults to the global scope when it has them (browsers). */
  network?: NetworkEvents;
}

export type ConnectionState =
  | { status: 'connecting' }
  | { status: 'connected'; clientId: string; userId: string }
  | { status: 'reconnecting'; attempt: number; delayMs: number; code: number; reason: string }
  | { status: 'resumed'; clientId: string; replayed: number }
  | { status: 'disconnected'; code: number; reason: string; error?: Error };

/** After a reconnect that could not resume: a new identity, rejoined to the old room if there was one. */
export interface SessionLost {
  previousClientId: string;
  clientId: string;
  /** The rejoin's answer, or null if there was no room or the rejoin failed (see the `error` event). */
  room: RoomJoined | null;
  /** Messages without an answer (relays, custom events) queued during the gap and not sent. */
  dropped: number;
}

/** A custom event from the server, discriminated by `event`. */
export type CustomMessage<In extends EventDataMap> = {
  [E in keyof In & string]: { event: E; data: In[E] };
}[keyof In & string];

export interface ClientEvents<In extends EventDataMap> {
  state: ConnectionState;
  /** Errors no request can take: unattributable ones, relay errors, broken frames. */
  error: Error;
  'session-lost': SessionLost;
  'room:peer-joined': PeerJoined;
  'room:peer-left': PeerLeft;
  'sdp:offer': SdpRelay;
  'sdp:answer': SdpRelay;
  'ice:candidate': CandidateRelay;
  /** Any other server event: the custom events of plugins. */
  message: CustomMessage<In>;
}

interface Outgoing {
  event: string;
  data: object;
  id?: string;
}

interface Session {
  clientId: string;
  userId: string;
  resumeToken: string;
  room?: { roomId: string; metadata?: Record<string, unknown> };
}

/** Server-initiated events the client emits under their own names. */
const NOTIFICATIONS = new Set<string>(['room:peer-joined', 'room:peer-left', 'sdp:offer', 'sdp:answer', 'ice:candidate']);

/**
 * Closes after which a reconnect would be refused or would repeat the
 * offence: failed auth, rate abuse, a kick, and a session another
 * connection took over.
 */
const FINAL_CLOSES = new Set<number>([CloseCode.authFailed, CloseCode.rateAbuse, CloseCode.kicked, CloseCode.replaced]);

/**
 * The close code the client gives a socket it abandons (an attempt that
 * timed out or whose handshake failed). Not 1000 or 1001: those would end
 * the session at once instead of keeping it for a resume.
 */
const ABANDON_CLOSE = 3000;

/**
 * A Switchboard connection that stays up: it authenticates, reconnects with
 * backoff, resumes the session when it can and re-authenticates and
 * rejoins when it cannot. `In` and `Out` type the custom events.
 */
export class Client<In extends EventDataMap = EventDataMap, Out extends EventDataMap = EventDataMap> extends Emitter<
  ClientEvents<In>
> {
  private readonly options: ClientOptions;
  private readonly WebSocketClass: SocketConstructor;
  private readonly network: NetworkEvents | undefined;
  private readonly backoff: Backoff;
  private readonly requests = new Requests();
  private currentState: ConnectionState = { status: 'disconnected', code: CloseCode.normal, reason: 'not connected yet' };
  private socket: SocketLike | undefined;
  private ready = false;
  private running = false;
  private session: Session | undefined;
  /** What a session that could not be resumed left to restore: set until the rejoin is done. */
  private recovery: { previousClientId: string; room: Session['room']; dropped: number } | undefined;
  private outbox: Outgoing[] = [];
  private tokenUsed = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private hello: ((connected: Connected) => void) | undefined;
  /** The `connect()` calls waiting for the client to be ready. */
  private waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: ClientOptions) {
    super();
    if (options.token === undefined && options.getToken === undefined) {
      throw new TypeError('Client needs `token` or `getToken`');
    }
    const WebSocketClass = options.WebSocket ?? (typeof WebSocket === 'function' ? WebSocket : undefined);
    if (WebSocketClass === undefined) {
      throw new TypeError('no global WebSocket here (Node 20?): pass one as the `WebSocket` option, e.g. from the `ws` package');
    }
    this.options = options;
    this.WebSocketClass = WebSocketClass;
    this.network = options.network ?? (typeof globalThis.addEventListener === 'function' ? globalThis : undefined);
    this.backoff = new Backoff(options.backoff);
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** This connection's id in the room (changes only after a session is lost). */
  get clientId(): string | undefined {
    return this.session?.clientId;
  }

  get userId(): string | undefined {
    return this.session?.userId;
  }

  get roomId(): string | undefined {
    return this.session?.room?.roomId;
  }

  /**
   * Connects and authenticates. Resolves once ready; failed attempts are
   * retried with backoff meanwhile. Rejects on a final failure (auth
   * refused, `disconnect()`, a final close code).
   */
  connect(): Promise<void> {
    if (this.ready) return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
    });
    if (!this.running) {
      this.running = true;
      this.network?.addEventListener('online', this.onOnline);
      this.setState({ status: 'connecting' });
      this.open();
    }
    return promise;
  }

  /** Closes with 1000 (the room sees this client leave at once) and stops reconnecting. */
  disconnect(): void {
    this.stop(CloseCode.normal, 'disconnect() called');
  }

  join(roomId: string, metadata?: Record<string, unknown>): Promise<RoomJoined> {
    const data = metadata === undefined ? { roomId } : { roomId, metadata };
    return this.ask('room:join', data).then((envelope) => {
      const joined = envelope.data as unknown as RoomJoined;
      if (this.session !== undefined) this.session.room = metadata === undefined ? { roomId } : { roomId, metadata };
      return joined;
    });
  }

  leave(): Promise<RoomLeft> {
    return this.ask('room:leave', {}).then((envelope) => {
      if (this.session !== undefined) delete this.session.room;
      return envelope.data as unknown as RoomLeft;
    });
  }

  roomState(): Promise<RoomState> {
    return this.ask('room:state', {}).then((envelope) => envelope.data as unknown as RoomState);
  }

  ping(): Promise<Pong> {
    return this.ask('ping', {}).then((envelope) => envelope.data as unknown as Pong);
  }

  /** Refreshes the claims of this connection (same `sub`); resolves with the user id. */
  authenticate(token: string): Promise<string> {
    return this.ask('auth:request', { token }).then((envelope) => authenticated(envelope, 'auth:request'));
  }

  sendOffer(to: string, sdp: string): void {
    this.enqueue({ event: 'sdp:offer', data: { to, sdp } });
  }

  sendAnswer(to: string, sdp: string): void {
    this.enqueue({ event: 'sdp:answer', data: { to, sdp } });
  }

  sendCandidate(to: string, candidate: IceCandidate): void {
    this.enqueue({ event: 'ice:candidate', data: { to, candidate } });
  }

  /**
   * Sends a custom event without waiting for anything: a plugin may answer
   * nothing at all. Errors it causes come as `error` events naming it.
   */
  send<E extends keyof Out & string>(event: E, data: Out[E]): void {
    this.enqueue({ event, data });
  }

  /** Sends a custom event whose plugin answers it; resolves with the first answer carrying its id. */
  request<E extends keyof Out & string>(event: E, data: Out[E]): Promise<Envelope> {
    return this.ask(event, data);
  }

  private ask(event: string, data: object): Promise<Envelope> {
    if (!this.running) {
      return Promise.reject(new SwitchboardError('DISCONNECTED', 'not connected: call connect() first', event));
    }
    const { id, promise } = this.requests.create(event, this.requestTimeoutMs());
    this.enqueue({ event, data, id });
    return promise;
  }

  private requestTimeoutMs(): number {
    return this.options.requestTimeoutMs ?? 10_000;
  }

  private enqueue(message: Outgoing): void {
    if (!this.running) {
      throw new SwitchboardError('DISCONNECTED', 'not connected: call connect() first', message.event);
    }
    if (this.ready && this.socket !== undefined) {
      this.write(this.socket, message);
    } else {
      this.outbox.push(message);
    }
  }

  private write(socket: SocketLike, message: Outgoing): void {
    socket.send(encode(message.event, message.data, message.id));
    this.requests.sent(message.id);
  }

  private setState(state: ConnectionState): void {
    this.currentState = state;
    this.emit('state', state);
  }

  private reportError(error: Error): void {
    if (this.listenerCount('error') === 0) {
      // An error nobody listens for still has to be seen somewhere.
      console.error('switchboard client:', error);
    }
    this.emit('error', error);
  }

  private readonly onOnline = (): void => {
    if (this.retryTimer === undefined) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.open();
  };

  private open(): void {
    this.retryTimer = undefined;
    let socket: SocketLike;
    try {
      socket = new this.WebSocketClass(this.options.url);
    } catch (error) {
      // A malformed URL throws here; retrying would throw the same way.
      this.stop(CloseCode.normal, `cannot open ${this.options.url}`, asError(error));
      return;
    }
    this.socket = socket;
    this.requests.newSocket();
    // An `error` event carries nothing useful and a close with the code
    // follows it; but the `ws` package throws an error nobody listens to.
    socket.onerror = () => undefined;
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.lost(event.code, event.reason);
    };
    this.connectTimer = setTimeout(() => {
      if (this.socket === socket) this.abandon(socket, `not ready within ${this.connectTimeoutMs()} ms`);
    }, this.connectTimeoutMs());
    this.handshake(socket).catch((error: unknown) => {
      if (this.socket !== socket) return; // that socket is gone and its close handled
      const failure = asError(error);
      if (failure instanceof SwitchboardError && failure.code === 'AUTH_FAILED') {
        this.stop(CloseCode.normal, 'authentication failed', failure);
      } else {
        // A server that does not answer (or answers nonsense) gets another try.
        this.reportError(failure);
        this.abandon(socket, failure.message);
      }
    });
  }

  /** Gives up on a connection attempt, keeping the session for the next one. */
  private abandon(socket: SocketLike, why: string): void {
    socket.close(ABANDON_CLOSE);
    this.lost(CloseCode.abnormal, why);
  }

  private connectTimeoutMs(): number {
    return this.options.connectTimeoutMs ?? 10_000;
  }

  /** Resumes the session on `socket`, or starts a new one (and rejoins) if it cannot be resumed. */
  private async handshake(socket: SocketLike): Promise<void> {
    const hello = await new Promise<Connected>((resolve) => {
      this.hello = resolve;
    });
    const previous = this.session;
    if (previous !== undefined) {
      if (await this.resume(socket, previous)) return;
      // Nothing from the lost session may leak into the new one: its
      // answers are gone and its relays were addressed as another client.
      this.requests.rejectAll(
        (event, id) => new SwitchboardError('SESSION_LOST', 'the session ended before an answer came', event, id),
      );
      const dropped = this.outbox.filter((message) => message.id === undefined).length;
      this.outbox = [];
      this.session = undefined;
      this.recovery = { previousClientId: previous.clientId, room: previous.room, dropped };
    }
    const userId = await this.authenticateOn(socket);
    const session: Session = { clientId: hello.clientId, userId, resumeToken: hello.resumeToken };
    const recovery = this.recovery;
    // Until the rejoin is done the new session is not kept: if this
    // connection fails first, the next one starts the recovery over.
    const room = recovery === undefined ? null : await this.rejoin(socket, session, recovery.room);
    this.session = session;
    this.recovery = undefined;
    this.becomeReady(socket, { status: 'connected', clientId: session.clientId, userId });
    if (recovery !== undefined) {
      this.emit('session-lost', {
        previousClientId: recovery.previousClientId,
        clientId: session.clientId,
        room,
        dropped: recovery.dropped,
      });
    }
  }

  /** True if the server resumed `session` on `socket`; false if it could not. */
  private async resume(socket: SocketLike, session: Session): Promise<boolean> {
    let resumed: SessionResumed;
    try {
      const answer = await this.internalCall(socket, 'session:resume', { resumeToken: session.resumeToken });
      resumed = answer.data as unknown as SessionResumed;
    } catch (error) {
      if (error instanceof SwitchboardError && error.code === 'RESUME_FAILED') return false;
      throw error;
    }
    session.resumeToken = resumed.resumeToken;
    // The server's word on the room counts: it may have closed the room meanwhile.
    if (resumed.roomId === null) delete session.room;
    else if (session.room?.roomId !== resumed.roomId) session.room = { roomId: resumed.roomId };
    this.becomeReady(socket, { status: 'resumed', clientId: resumed.clientId, replayed: resumed.replayed });
    return true;
  }

  private async authenticateOn(socket: SocketLike): Promise<string> {
    const token = await this.nextToken();
    const data = this.options.authRoomId === undefined ? { token } : { token, roomId: this.options.authRoomId };
    return authenticated(await this.internalCall(socket, 'auth:request', data), 'auth:request');
  }

  /** Joins `room` again as `session`; a refusal is reported and leaves the client outside any room. */
  private async rejoin(socket: SocketLike, session: Session, room: Session['room']): Promise<RoomJoined | null> {
    if (room === undefined) return null;
    const data = room.metadata === undefined ? { roomId: room.roomId } : room;
    try {
      const joined = (await this.internalCall(socket, 'room:join', data)).data as unknown as RoomJoined;
      session.room = room;
      return joined;
    } catch (error) {
      // A connection that failed meanwhile is retried; a room that refuses is final.
      if (!(error instanceof SwitchboardError) || error.code === 'TIMEOUT' || error.code === 'DISCONNECTED') throw error;
      this.reportError(error);
      return null;
    }
  }

  private async nextToken(): Promise<string> {
    const { token, getToken } = this.options;
    if (token !== undefined && !this.tokenUsed) {
      this.tokenUsed = true;
      return token;
    }
    if (getToken !== undefined) return getToken();
    if (token !== undefined) return token; // only one token was given; it is all there is
    throw new TypeError('Client needs `token` or `getToken`');
  }

  /** A request written straight to `socket`, ahead of the outbox, that dies with the socket. */
  private internalCall(socket: SocketLike, event: string, data: object): Promise<Envelope> {
    const { id, promise } = this.requests.create(event, this.requestTimeoutMs(), true);
    this.write(socket, { event, data, id });
    return promise;
  }

  private becomeReady(socket: SocketLike, state: ConnectionState): void {
    clearTimeout(this.connectTimer);
    this.ready = true;
    this.attempt = 0;
    this.backoff.reset();
    this.setState(state);
    const queued = this.outbox;
    this.outbox = [];
    for (const message of queued) {
      // A request that timed out while queued has been answered already.
      if (message.id === undefined || this.requests.isPending(message.id)) this.write(socket, message);
    }
    for (const waiter of this.waiting.splice(0)) waiter.resolve();
  }

  private receive(raw: unknown): void {
    let envelope: Envelope;
    try {
      if (typeof raw !== 'string') throw new Error('server sent a binary frame');
      envelope = decode(raw);
    } catch (error) {
      this.reportError(asError(error));
      return;
    }
    if (this.requests.settle(envelope)) return;
    // Every other frame with an id answers a request that has timed out
    // (and was told so): server-initiated frames never have one.
    if (envelope.id !== undefined) return;
    const { event, data } = envelope;
    if (event === 'connected') {
      const hello = this.hello;
      this.hello = undefined;
      hello?.(data as unknown as Connected);
    } else if (event === 'error') {
      const error = data as unknown as ErrorData;
      if (error.code === 'RATE_LIMITED' && this.requests.rateLimited(error.message)) return;
      this.reportError(SwitchboardError.fromServer(error));
    } else if (NOTIFICATIONS.has(event)) {
      // The set above lists exactly the notification keys of ClientEvents.
      this.emit(event as 'room:peer-joined', data as unknown as PeerJoined);
    } else {
      this.emit('message', { event, data } as unknown as CustomMessage<In>);
    }
  }

  /** The socket closed: reconnect, unless that close is final. */
  private lost(code: number, reason: string): void {
    clearTimeout(this.connectTimer);
    this.socket = undefined;
    this.ready = false;
    this.hello = undefined;
    this.requests.rejectInternal(
      (event, id) => new SwitchboardError('DISCONNECTED', `connection closed (${code})`, event, id),
    );
    if (!this.running) return;
    if (FINAL_CLOSES.has(code)) {
      this.stop(code, reason === '' ? 'closed by the server' : reason);
      return;
    }
    this.attempt += 1;
    const delayMs = this.backoff.next();
    this.setState({ status: 'reconnecting', attempt: this.attempt, delayMs, code, reason });
    this.retryTimer = setTimeout(() => {
      this.open();
    }, delayMs);
  }

  /** Ends for good: no reconnect, every waiting request rejected. */
  private stop(code: number, reason: string, error?: Error): void {
    this.running = false;
    this.ready = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    this.retryTimer = undefined;
    this.network?.removeEventListener('online', this.onOnline);
    const socket = this.socket;
    this.socket = undefined;
    this.hello = undefined;
    // No reason: browsers throw on one over 123 bytes, and the server's own may be.
    socket?.close(CloseCode.normal);
    const cause = error ?? new SwitchboardError('DISCONNECTED', `${reason} (${code})`);
    this.requests.rejectAll((event, id) => new SwitchboardError('DISCONNECTED', cause.message, event, id));
    this.outbox = [];
    this.session = undefined;
    this.recovery = undefined;
    this.setState(error === undefined ? { status: 'disconnected', code, reason } : { status: 'disconnected', code, reason, error });
    for (const waiter of this.waiting.splice(0)) waiter.reject(cause);
  }
}

function authenticated(envelope: Envelope, event: string): string {
  const response = envelope.data as unknown as AuthResponse;
  if (!response.success || response.userId === undefined) {
    throw new SwitchboardError('AUTH_FAILED', response.error?.message ?? 'authentication failed', event);
  }
  return response.userId;
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
