// Two headless Chromium pages call each other through a real switchboard
// with the SDK's Client and PeerLink.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { Proxy } from '../support/proxy.js';
import { startServer, type Server } from '../support/server.js';
import { serveStatic, type StaticServer } from '../support/static.js';
import { token } from '../support/token.js';
import type { Harness, Snapshot } from './harness.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

let server: Server;
let site: StaticServer;
let browser: Browser;
const proxies: Proxy[] = [];
const pages: Page[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  [server, site, browser] = await Promise.all([
    startServer(''),
    serveStatic({
      '/': { body: '<!doctype html><title>harness</title><script type="module" src="/harness.js"></script>', type: 'text/html' },
      '/harness.js': { file: resolve(ROOT, 'test/browser/harness.js'), type: 'text/javascript' },
      '/switchboard.js': { file: resolve(ROOT, 'dist/switchboard.js'), type: 'text/javascript' },
    }),
    launchChromium(),
  ]);
});

afterAll(async () => {
  await browser.close();
  for (const proxy of proxies) await proxy.close();
  await site.close();
  await server.stop();
});

async function openPage(): Promise<Page> {
  const page = await browser.newPage();
  pages.push(page);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${site.url}/`);
  await page.waitForFunction(() => 'harness' in window);
  return page;
}

/** Runs `method` of the page's harness with `args`. */
function run<M extends keyof Harness>(page: Page, method: M, ...args: Parameters<Harness[M]>): Promise<Awaited<ReturnType<Harness[M]>>> {
  return page.evaluate(
    ([name, values]) => (window.harness[name] as (...a: unknown[]) => unknown)(...values),
    [method, args] as const,
  ) as Promise<Awaited<ReturnType<Harness[M]>>>;
}

/** Polls the page's snapshot until `condition` holds; fails with the last snapshot. */
async function until(page: Page, what: string, condition: (s: Snapshot) => boolean, ms = 20_000): Promise<Snapshot> {
  const deadline = Date.now() + ms;
  for (;;) {
    const snapshot = await run(page, 'snapshot');
    if (condition(snapshot)) return snapshot;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; page errors: ${JSON.stringify(pageErrors)}; last snapshot: ${JSON.stringify(snapshot)}`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** Two pages in `roomId`: alice (through `aliceUrl`, the server by default) and bob. */
async function pair(roomId: string, aliceUrl = server.url) {
  const [alice, bob] = await Promise.all([openPage(), openPage()]);
  const a = await run(alice, 'join', { url: aliceUrl, token: token('alice'), roomId });
  const b = await run(bob, 'join', { url: server.url, token: token('bob'), roomId });
  expect(b.peers).toEqual([a.clientId]);
  return { alice, bob, aliceId: a.clientId, bobId: b.clientId };
}

const connected = (s: Snapshot): boolean => s.connectionState === 'connected' && s.channelState === 'open';
const videoFlowing = (s: Snapshot): boolean => connected(s) && s.inboundVideoBytes > 0;

/** Each side sends one data-channel message and receives the other's. */
async function chatBothWays(alice: Page, bob: Page): Promise<void> {
  await run(alice, 'send', 'hello from alice');
  await run(bob, 'send', 'hello from bob');
  await until(bob, 'alice’s message', (s) => s.received.includes('hello from alice'));
  await until(alice, 'bob’s message', (s) => s.received.includes('hello from bob'));
}

describe('calls through switchboard', () => {
  it('a call: data-channel messages both ways, fake video received, then a renegotiation adds the other way', async () => {
    const { alice, bob, aliceId, bobId } = await pair('call');
    // Alice has nothing to offer yet, so bob's offer is the only one.
    await run(alice, 'call', bobId, { video: false, channel: 'accept' });
    await run(bob, 'call', aliceId, { video: true, channel: 'create' });
    await until(alice, 'video from bob', videoFlowing);
    await until(bob, 'the connection', connected);
    await chatBothWays(alice, bob);
    await run(alice, 'addVideo');
    const b = await until(bob, 'video from alice', videoFlowing);
    expect(b.remoteTracks).toHaveLength(1);
    for (const page of [alice, bob]) {
      const { log } = await run(page, 'snapshot');
      expect(log.filter((e) => e.kind === 'error' || e.kind === 'link-error')).toEqual([]);
    }
  });

  it('glare: both sides add tracks at once, both offer, and the call still connects', async () => {
    const { alice, bob, aliceId, bobId } = await pair('glare');
    const at = Date.now() + 500;
    await Promise.all([
      run(alice, 'call', bobId, { video: true, channel: 'negotiated', at }),
      run(bob, 'call', aliceId, { video: true, channel: 'negotiated', at }),
    ]);
    const [a, b] = await Promise.all([
      until(alice, 'video from bob', videoFlowing),
      until(bob, 'video from alice', videoFlowing),
    ]);
    // Glare happened: each side set out to offer before it had seen an offer.
    for (const { log } of [a, b]) {
      const offers = log.filter((e) => e.kind === 'negotiation-needed' || e.kind === 'got-offer');
      expect(offers[0]?.kind).toBe('negotiation-needed');
      expect(offers.some((e) => e.kind === 'got-offer')).toBe(true);
    }
    await chatBothWays(alice, bob);
    expect(pageErrors).toEqual([]);
  });

  it('a socket cut mid-call resumes, and a renegotiation afterwards works', async () => {
    const proxy = await Proxy.start(server.addr);
    proxies.push(proxy);
    const { alice, bob, aliceId, bobId } = await pair('cut', proxy.url());
    await run(alice, 'call', bobId, { video: false, channel: 'accept' });
    await run(bob, 'call', aliceId, { video: true, channel: 'create' });
    await until(alice, 'video from bob', videoFlowing);

    proxy.sever();
    const resumed = await until(alice, 'the resume', (s) => s.state?.status === 'resumed');
    const states = resumed.log.flatMap((e) => (e.kind === 'state' ? [e.status] : []));
    expect(states).toEqual(['connecting', 'connected', 'reconnecting', 'resumed']);
    expect(resumed.clientId).toBe(aliceId);

    // Signaling works again: alice's new track reaches bob, and bob's second one alice.
    await run(alice, 'addVideo');
    await until(bob, 'video from alice', videoFlowing);
    await run(bob, 'addVideo');
    await until(alice, 'bob’s second track', (s) => s.remoteTracks.length === 2);
    await chatBothWays(alice, bob);
    expect(pageErrors).toEqual([]);
  });
});
