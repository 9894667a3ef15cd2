// The demo page (demo/index.html and demo/call.js) in two tabs: a call with
// video and chat, used by keyboard, and the README's screenshot.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { binaryPath, startServer, type Server } from '../support/server.js';
import { serveStatic, type StaticServer } from '../support/static.js';
import { token } from '../support/token.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const SCREENSHOT = resolve(ROOT, 'test-results/demo.png');

let server: Server;
let site: StaticServer | undefined;
let demoUrl: string;
let browser: Browser;

/** Whether this build of the server serves the demo itself (`serve --demo`). */
function serverHasDemo(): boolean {
  return execFileSync(binaryPath(), ['serve', '--help'], { encoding: 'utf8' }).includes('--demo');
}

beforeAll(async () => {
  browser = await launchChromium();
  if (serverHasDemo()) {
    server = await startServer('', ['--demo']);
    demoUrl = `http://${server.addr}/demo`;
  } else {
    // Until the server serves /demo, the same routes from here, with /ws
    // passed through to it.
    server = await startServer('');
    site = await serveStatic(
      {
        '/demo': { file: resolve(ROOT, 'demo/index.html'), type: 'text/html' },
        '/demo/call.js': { file: resolve(ROOT, 'demo/call.js'), type: 'text/javascript' },
        '/demo/switchboard.js': { file: resolve(ROOT, 'dist/switchboard.js'), type: 'text/javascript' },
        '/demo/token': {
          json: () => {
            const user = `guest-${randomUUID().slice(0, 8)}`;
            return { token: token(user), user };
          },
        },
      },
      server.addr,
    );
    demoUrl = `${site.url}/demo`;
  }
});

afterAll(async () => {
  await browser.close();
  await site?.close();
  await server.stop();
});

async function startCall(room: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 960, height: 760 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(demoUrl);
  // By keyboard: the room field, then Enter submits the form.
  await page.getByLabel('Room').fill(room);
  await page.getByLabel('Room').press('Enter');
  await expect.poll(() => errors).toEqual([]);
  return page;
}

const status = (page: Page): Promise<string> => page.locator('#status').innerText();
const remoteVideoWidth = (page: Page): Promise<number> =>
  page.locator('#remote').evaluate((video: HTMLVideoElement) => video.videoWidth);

it('two tabs call each other on the demo page, chat over the data channel and hang up', async () => {
  const room = `demo-${randomUUID().slice(0, 6)}`;
  const first = await startCall(room);
  await expect.poll(() => status(first), { timeout: 10_000 }).toMatch(/^Connected as guest-|^Connected as /);
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
  await expect.poll(() => status(first)).toMatch(/^Connected as /);
});
