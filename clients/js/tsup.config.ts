import { defineConfig } from 'tsup';

// One self-contained ESM file: the server embeds it for its demo page, and
// scripts/test-js checks that a fresh build is byte-identical to the
// committed one, so nothing here may vary between builds (no banner with a
// date, no source map with absolute paths).
export default defineConfig({
  entry: { switchboard: 'src/index.ts' },
  format: ['esm'],
  target: 'es2022',
  platform: 'neutral',
  dts: true,
  clean: true,
  sourcemap: false,
  splitting: false,
  minify: false,
});
