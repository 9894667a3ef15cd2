// A real `switchboard serve` child process on ports of its own, as the
// Rust end-to-end tests start it (tests/src/server.rs).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { JWT_SECRET } from './token.js';

const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../../../..');
const STARTUP_TIMEOUT_MS = 30_000;
const LISTENING_PREFIX = 'switchboard listening on ws://';
const ADMIN_PREFIX = 'switchboard admin on http://';

/**
 * `SWITCHBOARD_BIN`, else the debug build in `CARGO_TARGET_DIR` (taken from
 * the repository root when relative, as cargo run there would) or `target/`.
 */
function binaryPath(): string {
  return process.env.SWITCHBOARD_BIN ?? resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR ?? 'target', 'debug', 'switchboard');
}

/** The built-in chain plus the example `chat` plugin, then `extra` TOML. */
export function chatConfig(extra = ''): string {
  const chain = ['auth-jwt', 'rooms', 'chat', 'signaling'].map((name) => `[[plugins]]\nname = "${name}"\n`).join('\n');
  return `${extra}\n\n${chain}`;
}

export interface Server {
  /** `ws://ADDR/ws`. */
  url: string;
  /** `host:port` of the main listener. */
  addr: string;
  /** `http://ADDR` of the admin listener. */
  adminUrl: string;
  /** The server's stderr so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

export async function startServer(configToml: string, args: string[] = []): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-js-'));
  const configPath = join(dir, 'switchboard.toml');
  const logPath = join(dir, 'server.log');
  writeFileSync(configPath, configToml);
  const bin = binaryPath();
  const child = spawn(
    bin,
    ['serve', '--config', configPath, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...args],
    {
      env: { ...process.env, SWITCHBOARD_JWT_SECRET: JWT_SECRET, SWITCHBOARD_ADMIN_TOKEN: '' },
      stdio: ['ignore', 'pipe', openSync(logPath, 'w')],
    },
  );
  const log = (): string => readFileSync(logPath, 'utf8');
  const { addr, adminAddr } = await listening(child, bin, log);
  return {
    url: `ws://${addr}/ws`,
    addr,
    adminUrl: `http://${adminAddr}`,
    log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function listening(child: ChildProcess, bin: string, log: () => string): Promise<{ addr: string; adminAddr: string }> {
  return new Promise((done, fail) => {
    let adminAddr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${bin} did not print "${LISTENING_PREFIX}ADDR/ws" within ${STARTUP_TIMEOUT_MS} ms\nlog:\n${log()}`));
    }, STARTUP_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      fail(new Error(`cannot run ${bin} (build it with cargo build -p switchboard, or set SWITCHBOARD_BIN): ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`${bin} exited before listening (${String(code ?? signal)})\nlog:\n${log()}`));
    });
    if (child.stdout === null) throw new Error('stdout is piped');
    // Reading every line keeps the pipe drained for the server's later prints.
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith(ADMIN_PREFIX)) adminAddr = line.slice(ADMIN_PREFIX.length).replace(/\/$/, '');
      if (line.startsWith(LISTENING_PREFIX) && line.endsWith('/ws')) {
        clearTimeout(timer);
        done({ addr: line.slice(LISTENING_PREFIX.length, -'/ws'.length), adminAddr });
      }
    });
  });
}
