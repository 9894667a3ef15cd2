import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, expect, test } from 'vitest';

const checkedIn = join(import.meta.dirname, '../src/wit');
const fresh = mkdtempSync(join(tmpdir(), 'switchboard-wit-'));
afterAll(() => {
  rmSync(fresh, { recursive: true, force: true });
});

function files(dir: string): Map<string, string> {
  const entries = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  return new Map(entries.map((entry) => {
    const path = join(entry.parentPath, entry.name);
    return [relative(dir, path), readFileSync(path, 'utf8')];
  }));
}

test('the checked-in types are what jco generates from wit/switchboard.wit (run `npm run types` if not)', () => {
  execFileSync(process.execPath, [join(import.meta.dirname, '../scripts/wit-types.mjs'), fresh]);
  expect(files(checkedIn)).toEqual(files(fresh));
}, 60_000);
