import WebSocket from 'ws';
import { Client, type ChatIncoming, type ChatOutgoing, type ClientEvents, type ClientOptions } from '../../src/index.js';
import { token } from './token.js';

export type ChatClient = Client<ChatIncoming, ChatOutgoing>;

/** A Node client (the `ws` package as its WebSocket) for user `sub` (unless `getToken` is given), not yet connected. */
export function nodeClient(url: string, sub: string, options: Partial<ClientOptions> = {}): ChatClient {
  const auth = options.getToken === undefined ? { token: token(sub) } : {};
  const client: ChatClient = new Client({ url, WebSocket, ...auth, ...options });
  // Every test that expects an error listens for it; others must not get one.
  client.on('error', (error) => {
    throw error;
  });
  return client;
}

/** Resolves with the next `event` whose payload passes `which`, or fails after `ms`. */
export function next<K extends keyof ClientEvents<ChatIncoming>>(
  client: ChatClient,
  event: K,
  which: (payload: ClientEvents<ChatIncoming>[K]) => boolean = () => true,
  ms = 10_000,
): Promise<ClientEvents<ChatIncoming>[K]> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      off();
      fail(new Error(`no ${event} within ${String(ms)} ms`));
    }, ms);
    const off = client.on(event, (payload) => {
      if (!which(payload)) return;
      clearTimeout(timer);
      off();
      done(payload);
    });
  });
}

/** Waits until `condition` holds, polling; fails with `what` after `ms`. */
export async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 10));
  }
}

/** Collects the text of every chat message `client` receives, in order. */
export function chatLog(client: ChatClient): string[] {
  const texts: string[] = [];
  // ChatClient's only custom event is chat:message.
  client.on('message', (m) => texts.push(m.data.text));
  return texts;
}
