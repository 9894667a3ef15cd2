// The component's entry: `npm run build` bundles this into dist/{{name}}.wasm.
import { exportPlugin } from '@switchboard/plugin/component';
import { plugin } from './plugin.js';

export const guest = exportPlugin(plugin);
