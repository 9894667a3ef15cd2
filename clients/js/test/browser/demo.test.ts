// The demo page as `switchboard serve --demo` serves it (demo/index.html,
// demo/call.js and dist/switchboard.js, built into the binary) in two tabs:
// a call with video and chat, used by keyboard, and the README's screenshot.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { startServer, type Server } from '../support/server.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const SCREENSHOT = resolve(ROOT, 'test-results/demo.png');

let server: Server;
let browser: Browser;
const pageErrors: string[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([startServer('', ['--demo']), launchChromium()]);
});

afterAll(async () => {
  await browser.close();
  await server.stop();
});

async function startCall(room: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 960, height: 760 } });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`http://${server.addr}/demo`);
  // By keyboard: the room field, then Enter submits the form.
  await page.getByLabel('Room').fill(room);
  await page.getByLabel('Room').press('Enter');
  return page;
}

const status = (page: Page): Promise<string> => page.locator('#status').innerText();
const remoteVideoWidth = (page: Page): Promise<number> =>
  page.locator('#remote').evaluate((video: HTMLVideoElement) => video.videoWidth);

it('two tabs call each other on the demo page, chat over the data channel and hang up', async () => {
  const room = `demo-${randomUUID().slice(0, 6)}`;
  const first = await startCall(room);
  await expect.poll(() => status(first), { timeout: 10_000 }).toMatch(/^Connected as guest-/);
  const second = await startCall(room);
  for (const page of [first, second]) {
    await expect.poll(() => status(page), { timeout: 20_000 }).toMatch(/call connected$/);
    await expect.poll(() => remoteVideoWidth(page), { timeout: 20_000 }).toBeGreaterThan(0);
  }

  await second.getByLabel('Message').fill('Hello from the second tab');
  await second.getByLabel('Message').press('Enter');
  await expect.poll(() => first.locator('#messages').innerText()).toContain('Peer: Hello from the second tab');
  await first.getByLabel('Message').fill('Hi! Video and chat are peer to peer.');
  await first.getByRole('button', { name: 'Send' }).click();
  await expect.poll(() => second.locator('#messages').innerText()).toContain('Peer: Hi! Video and chat are peer to peer.');

  mkdirSync(resolve(SCREENSHOT, '..'), { recursive: true });
  await first.screenshot({ path: SCREENSHOT });

  await second.getByRole('button', { name: 'Hang up' }).click();
  await expect.poll(() => status(second)).toMatch(/^Disconnected \(1000/);
  await expect.poll(() => first.locator('#remote-caption').innerText()).toBe('Waiting for someone to join');
  await expect.poll(() => status(first)).toMatch(/^Connected as guest-/);
  expect(pageErrors).toEqual([]);
});
