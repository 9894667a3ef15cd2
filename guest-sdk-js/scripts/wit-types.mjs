// Writes the TypeScript declarations of the WIT world (what `jco
// guest-types` writes) into the directory given as the first argument
// (default: src/wit).
//
// jco 1.35 runs its type generator as a component on preview2-shim 0.26,
// which starts with no preopened directory, so `jco guest-types` cannot read
// any WIT file ("No such file or directory (os error 44)"). Calling the
// generator here lets us grant it the one directory it reads.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { _addPreopen } from '@bytecodealliance/preview2-shim/filesystem';
import { generateGuestTypes } from '@bytecodealliance/jco-transpile';

const here = dirname(fileURLToPath(import.meta.url));
const witDir = resolve(here, '../../wit');
const outDir = resolve(process.argv[2] ?? join(here, '../src/wit'));

_addPreopen(witDir, witDir);
const files = await generateGuestTypes(witDir, { worldName: 'plugin', outDir: `${outDir}/` });
for (const [path, text] of Object.entries(files)) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}
