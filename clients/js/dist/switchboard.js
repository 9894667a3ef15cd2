// src/backoff.ts
var Backoff = class {
  constructor(options = {}, random = Math.random) {
    this.random = random;
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 2e4;
    if (!(this.initialMs > 0 && this.maxMs >= this.initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs <= maxMs, got ${this.initialMs} and ${this.maxMs}`);
    }
  }
  random;
  attempt = 0;
  initialMs;
  maxMs;
  /** The delay before the next attempt; each call counts as one attempt. */
  next() {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.floor(this.random() * ceiling);
  }
  /** After a successful connection the next failure starts fast again. */
  reset() {
    this.attempt = 0;
  }
};

// src/envelope.ts
function encode(event, data, id) {
  return JSON.stringify(id === void 0 ? { event, data } : { event, id, data });
}
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function decode(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new Error(`server sent a frame that is not JSON: ${text.slice(0, 200)}`, { cause });
  }
  if (!isObject(value) || typeof value.event !== "string" || !isObject(value.data)) {
    throw new Error(`server sent a frame that is not an envelope: ${text.slice(0, 200)}`);
  }
  if (value.id !== void 0 && typeof value.id !== "string") {
    throw new Error(`server sent a frame whose id is not a string: ${text.slice(0, 200)}`);
  }
  return value.id === void 0 ? { event: value.event, data: value.data } : { event: value.event, id: value.id, data: value.data };
}

// src/errors.ts
var SwitchboardError = class _SwitchboardError extends Error {
  name = "SwitchboardError";
  code;
  /** The event that caused it, when known. */
  event;
  /** The correlation id of the request that caused it, when known. */
  requestId;
  constructor(code, message, event, requestId) {
    super(`${code}: ${message}`);
    this.code = code;
    this.event = event;
    this.requestId = requestId;
  }
  static fromServer(data, requestId) {
    return data.code === "RATE_LIMITED" ? new RateLimitedError(data.message, data.event, requestId) : new _SwitchboardError(data.code, data.message, data.event, requestId);
  }
};
var RateLimitedError = class extends SwitchboardError {
  name = "RateLimitedError";
  constructor(message, event, requestId) {
    super("RATE_LIMITED", message, event, requestId);
  }
};
var TimeoutError = class extends SwitchboardError {
  name = "TimeoutError";
  constructor(event, timeoutMs, requestId) {
    super("TIMEOUT", `no answer to \`${event}\` within ${timeoutMs} ms`, event, requestId);
  }
};

// src/events.ts
var Emitter = class {
  listeners = /* @__PURE__ */ new Map();
  /** Adds a listener; returns a function that removes it. */
  on(event, listener) {
    let set = this.listeners.get(event);
    if (set === void 0) {
      set = /* @__PURE__ */ new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => {
      this.off(event, listener);
    };
  }
  /** Like `on`, for the next emission only. */
  once(event, listener) {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }
  off(event, listener) {
    this.listeners.get(event)?.delete(listener);
  }
  listenerCount(event) {
    return this.listeners.get(event)?.size ?? 0;
  }
  /**
   * Calls each listener in the order added. A listener that throws does not
   * stop the others; its error is rethrown on a fresh task, where the
   * platform reports it as uncaught, instead of breaking the client.
   */
  emit(event, payload) {
    const set = this.listeners.get(event);
    if (set === void 0) return;
    for (const listener of [...set]) {
      if (!set.has(listener)) continue;
      try {
        listener(payload);
      } catch (error) {
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
};

// src/protocol.ts
var CloseCode = {
  normal: 1e3,
  goingAway: 1001,
  abnormal: 1006,
  messageTooBig: 1009,
  internal: 1011,
  replaced: 4e3,
  authTimeout: 4001,
  authFailed: 4003,
  rateAbuse: 4008,
  kicked: 4009
};

// src/requests.ts
var Requests = class {
  counter = 0;
  pending = /* @__PURE__ */ new Map();
  generation = 0;
  seq = 0;
  lastAnswered = 0;
  /** Places of the unanswerable messages sent after `lastAnswered`. */
  unanswerable = [];
  create(event, timeoutMs, internal = false) {
    this.counter += 1;
    const id = `c-${this.counter}`;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(event, timeoutMs, id));
      }, timeoutMs);
      this.pending.set(id, { event, resolve, reject, timer, internal });
    });
    return { id, promise };
  }
  isPending(id) {
    return this.pending.has(id);
  }
  /** A new socket starts a new order; answers to older sockets' messages can only come as replays. */
  newSocket() {
    this.generation += 1;
    this.seq = 0;
    this.lastAnswered = 0;
    this.unanswerable = [];
  }
  /** Records that a frame was written: a request by its id, anything else with none. */
  sent(id) {
    this.seq += 1;
    const pending = id === void 0 ? void 0 : this.pending.get(id);
    if (pending === void 0) {
      this.unanswerable.push(this.seq);
    } else {
      pending.sentOn = this.generation;
      pending.seq = this.seq;
    }
  }
  /** Settles the request `envelope` answers; false if it answers none still waiting. */
  settle(envelope) {
    const id = envelope.id;
    const pending = id === void 0 ? void 0 : this.pending.get(id);
    if (id === void 0 || pending === void 0) return false;
    this.finish(id, pending);
    if (envelope.event === "error") {
      pending.reject(SwitchboardError.fromServer(envelope.data, id));
    } else {
      pending.resolve(envelope);
    }
    return true;
  }
  /** Rejects the request an id-less `RATE_LIMITED` answers, if that can be known. */
  rateLimited(message) {
    let oldest;
    for (const entry of this.pending) {
      const seq = entry[1].seq;
      if (entry[1].sentOn === this.generation && seq !== void 0 && (oldest === void 0 || seq < (oldest[1].seq ?? 0))) {
        oldest = entry;
      }
    }
    if (oldest === void 0) return false;
    const [id, pending] = oldest;
    const first = pending.seq ?? 0;
    if (this.unanswerable.some((seq) => seq < first)) return false;
    this.finish(id, pending);
    pending.reject(new RateLimitedError(message, pending.event, id));
    return true;
  }
  /** Rejects the internal requests of the current socket, which has closed. */
  rejectInternal(error) {
    this.rejectWhere((p) => p.internal, error);
  }
  rejectAll(error) {
    this.rejectWhere(() => true, error);
  }
  rejectWhere(which, error) {
    for (const [id, pending] of [...this.pending]) {
      if (!which(pending)) continue;
      clearTimeout(pending.timer);
      this.pending.delete(id);
      pending.reject(error(pending.event, id));
    }
  }
  finish(id, pending) {
    clearTimeout(pending.timer);
    this.pending.delete(id);
    if (pending.sentOn === this.generation && pending.seq !== void 0) {
      this.lastAnswered = Math.max(this.lastAnswered, pending.seq);
      this.unanswerable = this.unanswerable.filter((seq) => seq > this.lastAnswered);
    }
  }
};

// src/client.ts
var NOTIFICATIONS = /* @__PURE__ */ new Set(["room:peer-joined", "room:peer-left", "sdp:offer", "sdp:answer", "ice:candidate"]);
var FINAL_CLOSES = /* @__PURE__ */ new Set([CloseCode.authFailed, CloseCode.rateAbuse, CloseCode.kicked, CloseCode.replaced]);
var ABANDON_CLOSE = 3e3;
var Client = class extends Emitter {
  options;
  WebSocketClass;
  network;
  backoff;
  requests = new Requests();
  currentState = { status: "disconnected", code: CloseCode.normal, reason: "not connected yet" };
  socket;
  ready = false;
  running = false;
  session;
  /** What a session that could not be resumed left to restore: set until the rejoin is done. */
  recovery;
  outbox = [];
  tokenUsed = false;
  attempt = 0;
  retryTimer;
  connectTimer;
  hello;
  /** The `connect()` calls waiting for the client to be ready. */
  waiting = [];
  constructor(options) {
    super();
    if (options.token === void 0 && options.getToken === void 0) {
      throw new TypeError("Client needs `token` or `getToken`");
    }
    const WebSocketClass = options.WebSocket ?? (typeof WebSocket === "function" ? WebSocket : void 0);
    if (WebSocketClass === void 0) {
      throw new TypeError("no global WebSocket here (Node 20?): pass one as the `WebSocket` option, e.g. from the `ws` package");
    }
    this.options = options;
    this.WebSocketClass = WebSocketClass;
    this.network = options.network ?? (typeof globalThis.addEventListener === "function" ? globalThis : void 0);
    this.backoff = new Backoff(options.backoff);
  }
  get state() {
    return this.currentState;
  }
  /** This connection's id in the room (changes only after a session is lost). */
  get clientId() {
    return this.session?.clientId;
  }
  get userId() {
    return this.session?.userId;
  }
  get roomId() {
    return this.session?.room?.roomId;
  }
  /**
   * Connects and authenticates. Resolves once ready; failed attempts are
   * retried with backoff meanwhile. Rejects on a final failure (auth
   * refused, `disconnect()`, a final close code).
   */
  connect() {
    if (this.ready) return Promise.resolve();
    const promise = new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
    });
    if (!this.running) {
      this.running = true;
      this.network?.addEventListener("online", this.onOnline);
      this.setState({ status: "connecting" });
      this.open();
    }
    return promise;
  }
  /** Closes with 1000 (the room sees this client leave at once) and stops reconnecting. */
  disconnect() {
    this.stop(CloseCode.normal, "disconnect() called");
  }
  join(roomId, metadata) {
    const data = metadata === void 0 ? { roomId } : { roomId, metadata };
    return this.ask("room:join", data).then((envelope) => {
      const joined = envelope.data;
      if (this.session !== void 0) this.session.room = metadata === void 0 ? { roomId } : { roomId, metadata };
      return joined;
    });
  }
  leave() {
    return this.ask("room:leave", {}).then((envelope) => {
      if (this.session !== void 0) delete this.session.room;
      return envelope.data;
    });
  }
  roomState() {
    return this.ask("room:state", {}).then((envelope) => envelope.data);
  }
  ping() {
    return this.ask("ping", {}).then((envelope) => envelope.data);
  }
  /** Refreshes the claims of this connection (same `sub`); resolves with the user id. */
  authenticate(token) {
    return this.ask("auth:request", { token }).then((envelope) => authenticated(envelope, "auth:request"));
  }
  sendOffer(to, sdp) {
    this.enqueue({ event: "sdp:offer", data: { to, sdp } });
  }
  sendAnswer(to, sdp) {
    this.enqueue({ event: "sdp:answer", data: { to, sdp } });
  }
  sendCandidate(to, candidate) {
    this.enqueue({ event: "ice:candidate", data: { to, candidate } });
  }
  /**
   * Sends a custom event without waiting for anything: a plugin may answer
   * nothing at all. Errors it causes come as `error` events naming it.
   */
  send(event, data) {
    this.enqueue({ event, data });
  }
  /** Sends a custom event whose plugin answers it; resolves with the first answer carrying its id. */
  request(event, data) {
    return this.ask(event, data);
  }
  ask(event, data) {
    if (!this.running) {
      return Promise.reject(new SwitchboardError("DISCONNECTED", "not connected: call connect() first", event));
    }
    const { id, promise } = this.requests.create(event, this.requestTimeoutMs());
    this.enqueue({ event, data, id });
    return promise;
  }
  requestTimeoutMs() {
    return this.options.requestTimeoutMs ?? 1e4;
  }
  enqueue(message) {
    if (!this.running) {
      throw new SwitchboardError("DISCONNECTED", "not connected: call connect() first", message.event);
    }
    if (this.ready && this.socket !== void 0) {
      this.write(this.socket, message);
    } else {
      this.outbox.push(message);
    }
  }
  write(socket, message) {
    socket.send(encode(message.event, message.data, message.id));
    this.requests.sent(message.id);
  }
  setState(state) {
    this.currentState = state;
    this.emit("state", state);
  }
  reportError(error) {
    if (this.listenerCount("error") === 0) {
      console.error("switchboard client:", error);
    }
    this.emit("error", error);
  }
  onOnline = () => {
    if (this.retryTimer === void 0) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = void 0;
    this.open();
  };
  open() {
    this.retryTimer = void 0;
    let socket;
    try {
      socket = new this.WebSocketClass(this.options.url);
    } catch (error) {
      this.stop(CloseCode.normal, `cannot open ${this.options.url}`, asError(error));
      return;
    }
    this.socket = socket;
    this.requests.newSocket();
    socket.onerror = () => void 0;
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.lost(event.code, event.reason);
    };
    this.connectTimer = setTimeout(() => {
      if (this.socket === socket) this.abandon(socket, `not ready within ${this.connectTimeoutMs()} ms`);
    }, this.connectTimeoutMs());
    this.handshake(socket).catch((error) => {
      if (this.socket !== socket) return;
      const failure = asError(error);
      if (failure instanceof SwitchboardError && failure.code === "AUTH_FAILED") {
        this.stop(CloseCode.normal, "authentication failed", failure);
      } else {
        this.reportError(failure);
        this.abandon(socket, failure.message);
      }
    });
  }
  /** Gives up on a connection attempt, keeping the session for the next one. */
  abandon(socket, why) {
    socket.close(ABANDON_CLOSE);
    this.lost(CloseCode.abnormal, why);
  }
  connectTimeoutMs() {
    return this.options.connectTimeoutMs ?? 1e4;
  }
  /** Resumes the session on `socket`, or starts a new one (and rejoins) if it cannot be resumed. */
  async handshake(socket) {
    const hello = await new Promise((resolve) => {
      this.hello = resolve;
    });
    const previous = this.session;
    if (previous !== void 0) {
      if (await this.resume(socket, previous)) return;
      this.requests.rejectAll(
        (event, id) => new SwitchboardError("SESSION_LOST", "the session ended before an answer came", event, id)
      );
      const dropped = this.outbox.filter((message) => message.id === void 0).length;
      this.outbox = [];
      this.session = void 0;
      this.recovery = { previousClientId: previous.clientId, room: previous.room, dropped };
    }
    const userId = await this.authenticateOn(socket);
    const session = { clientId: hello.clientId, userId, resumeToken: hello.resumeToken };
    const recovery = this.recovery;
    const room = recovery === void 0 ? null : await this.rejoin(socket, session, recovery.room);
    this.session = session;
    this.recovery = void 0;
    this.becomeReady(socket, { status: "connected", clientId: session.clientId, userId });
    if (recovery !== void 0) {
      this.emit("session-lost", {
        previousClientId: recovery.previousClientId,
        clientId: session.clientId,
        room,
        dropped: recovery.dropped
      });
    }
  }
  /** True if the server resumed `session` on `socket`; false if it could not. */
  async resume(socket, session) {
    let resumed;
    try {
      const answer = await this.internalCall(socket, "session:resume", { resumeToken: session.resumeToken });
      resumed = answer.data;
    } catch (error) {
      if (error instanceof SwitchboardError && error.code === "RESUME_FAILED") return false;
      throw error;
    }
    session.resumeToken = resumed.resumeToken;
    if (resumed.roomId === null) delete session.room;
    else if (session.room?.roomId !== resumed.roomId) session.room = { roomId: resumed.roomId };
    this.becomeReady(socket, { status: "resumed", clientId: resumed.clientId, replayed: resumed.replayed });
    return true;
  }
  async authenticateOn(socket) {
    const token = await this.nextToken();
    const data = this.options.authRoomId === void 0 ? { token } : { token, roomId: this.options.authRoomId };
    return authenticated(await this.internalCall(socket, "auth:request", data), "auth:request");
  }
  /** Joins `room` again as `session`; a refusal is reported and leaves the client outside any room. */
  async rejoin(socket, session, room) {
    if (room === void 0) return null;
    const data = room.metadata === void 0 ? { roomId: room.roomId } : room;
    try {
      const joined = (await this.internalCall(socket, "room:join", data)).data;
      session.room = room;
      return joined;
    } catch (error) {
      if (!(error instanceof SwitchboardError) || error.code === "TIMEOUT" || error.code === "DISCONNECTED") throw error;
      this.reportError(error);
      return null;
    }
  }
  async nextToken() {
    const { token, getToken } = this.options;
    if (token !== void 0 && !this.tokenUsed) {
      this.tokenUsed = true;
      return token;
    }
    if (getToken !== void 0) return getToken();
    if (token !== void 0) return token;
    throw new TypeError("Client needs `token` or `getToken`");
  }
  /** A request written straight to `socket`, ahead of the outbox, that dies with the socket. */
  internalCall(socket, event, data) {
    const { id, promise } = this.requests.create(event, this.requestTimeoutMs(), true);
    this.write(socket, { event, data, id });
    return promise;
  }
  becomeReady(socket, state) {
    clearTimeout(this.connectTimer);
    this.ready = true;
    this.attempt = 0;
    this.backoff.reset();
    this.setState(state);
    const queued = this.outbox;
    this.outbox = [];
    for (const message of queued) {
      if (message.id === void 0 || this.requests.isPending(message.id)) this.write(socket, message);
    }
    for (const waiter of this.waiting.splice(0)) waiter.resolve();
  }
  receive(raw) {
    let envelope;
    try {
      if (typeof raw !== "string") throw new Error("server sent a binary frame");
      envelope = decode(raw);
    } catch (error) {
      this.reportError(asError(error));
      return;
    }
    if (this.requests.settle(envelope)) return;
    if (envelope.id !== void 0) return;
    const { event, data } = envelope;
    if (event === "connected") {
      const hello = this.hello;
      this.hello = void 0;
      hello?.(data);
    } else if (event === "error") {
      const error = data;
      if (error.code === "RATE_LIMITED" && this.requests.rateLimited(error.message)) return;
      this.reportError(SwitchboardError.fromServer(error));
    } else if (NOTIFICATIONS.has(event)) {
      this.emit(event, data);
    } else {
      this.emit("message", { event, data });
    }
  }
  /** The socket closed: reconnect, unless that close is final. */
  lost(code, reason) {
    clearTimeout(this.connectTimer);
    this.socket = void 0;
    this.ready = false;
    this.hello = void 0;
    this.requests.rejectInternal(
      (event, id) => new SwitchboardError("DISCONNECTED", `connection closed (${code})`, event, id)
    );
    if (!this.running) return;
    if (FINAL_CLOSES.has(code)) {
      this.stop(code, reason === "" ? "closed by the server" : reason);
      return;
    }
    this.attempt += 1;
    const delayMs = this.backoff.next();
    this.setState({ status: "reconnecting", attempt: this.attempt, delayMs, code, reason });
    this.retryTimer = setTimeout(() => {
      this.open();
    }, delayMs);
  }
  /** Ends for good: no reconnect, every waiting request rejected. */
  stop(code, reason, error) {
    this.running = false;
    this.ready = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    this.retryTimer = void 0;
    this.network?.removeEventListener("online", this.onOnline);
    const socket = this.socket;
    this.socket = void 0;
    this.hello = void 0;
    socket?.close(CloseCode.normal);
    const cause = error ?? new SwitchboardError("DISCONNECTED", `${reason} (${code})`);
    this.requests.rejectAll((event, id) => new SwitchboardError("DISCONNECTED", cause.message, event, id));
    this.outbox = [];
    this.session = void 0;
    this.recovery = void 0;
    this.setState(error === void 0 ? { status: "disconnected", code, reason } : { status: "disconnected", code, reason, error });
    for (const waiter of this.waiting.splice(0)) waiter.reject(cause);
  }
};
function authenticated(envelope, event) {
  const response = envelope.data;
  if (!response.success || response.userId === void 0) {
    throw new SwitchboardError("AUTH_FAILED", response.error?.message ?? "authentication failed", event);
  }
  return response.userId;
}
function asError(value) {
  return value instanceof Error ? value : new Error(String(value));
}

// src/webrtc.ts
var GATHER_BEFORE_ROLLBACK_MS = 1e3;
var PeerLink = class extends Emitter {
  constructor(signaling, pc, remoteId, options = {}) {
    super();
    this.signaling = signaling;
    this.pc = pc;
    this.remoteId = remoteId;
    this.options = options;
    pc.addEventListener("negotiationneeded", this.negotiate);
    pc.addEventListener("icecandidate", this.localCandidate);
    this.detach = [
      () => {
        pc.removeEventListener("negotiationneeded", this.negotiate);
      },
      () => {
        pc.removeEventListener("icecandidate", this.localCandidate);
      },
      signaling.on("sdp:offer", (m) => {
        this.fromRemote(m.from, () => this.description({ type: "offer", sdp: m.sdp }));
      }),
      signaling.on("sdp:answer", (m) => {
        this.fromRemote(m.from, () => this.description({ type: "answer", sdp: m.sdp }));
      }),
      signaling.on("ice:candidate", (m) => {
        this.fromRemote(m.from, () => this.remoteCandidate(m.candidate));
      }),
      // Signaling in flight was lost with the session, and the path may have
      // changed while the client was away.
      signaling.on("session-lost", () => {
        pc.restartIce();
      })
    ];
  }
  signaling;
  pc;
  remoteId;
  options;
  makingOffer = false;
  ignoreOffer = false;
  /** Signaling is applied one message at a time, in arrival order. */
  inbox = Promise.resolve();
  /** Settles when the offer being made has gathered its first candidate. */
  ownOfferGathered;
  gatheredOne;
  detach;
  get polite() {
    return this.options.polite ?? (this.signaling.clientId ?? "") > this.remoteId;
  }
  /** Stops listening and closes the peer connection. */
  close() {
    for (const off of this.detach) off();
    this.pc.close();
  }
  negotiate = () => {
    void this.makeOffer();
  };
  async makeOffer() {
    if (this.pc.iceGatheringState === "new") {
      this.ownOfferGathered = new Promise((resolve) => {
        this.gatheredOne = resolve;
      });
    }
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.sendLocalDescription();
    } catch (error) {
      this.fail(error);
    } finally {
      this.makingOffer = false;
    }
  }
  localCandidate = (event) => {
    this.gatheredOne?.();
    this.gatheredOne = void 0;
    if (event.candidate === null) return;
    try {
      this.signaling.sendCandidate(this.remoteId, event.candidate.toJSON());
    } catch (error) {
      this.fail(error);
    }
  };
  fromRemote(from, handle) {
    if (from !== this.remoteId) return;
    this.inbox = this.inbox.then(handle).catch((error) => {
      this.fail(error);
    });
  }
  async description(description) {
    const collision = description.type === "offer" && (this.makingOffer || this.pc.signalingState !== "stable");
    this.ignoreOffer = collision && !this.polite;
    if (this.ignoreOffer) return;
    if (collision && this.ownOfferGathered !== void 0) {
      await Promise.race([this.ownOfferGathered, delay(GATHER_BEFORE_ROLLBACK_MS)]);
    }
    await this.pc.setRemoteDescription(description);
    if (description.type === "offer") {
      await this.pc.setLocalDescription();
      this.sendLocalDescription();
    }
  }
  async remoteCandidate(candidate) {
    const ignoring = this.ignoreOffer;
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      if (!ignoring) throw error;
    }
  }
  sendLocalDescription() {
    const local = this.pc.localDescription;
    if (local === null) throw new Error("setLocalDescription() left no local description");
    if (local.type === "offer") this.signaling.sendOffer(this.remoteId, local.sdp);
    else if (local.type === "answer") this.signaling.sendAnswer(this.remoteId, local.sdp);
    else throw new Error(`unexpected local description of type ${local.type}`);
  }
  fail(error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    if (this.listenerCount("error") === 0) console.error(`switchboard PeerLink to ${this.remoteId}:`, failure);
    this.emit("error", failure);
  }
};
function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
export {
  Backoff,
  Client,
  CloseCode,
  PeerLink,
  RateLimitedError,
  SwitchboardError,
  TimeoutError
};
