// The component's entry: `npm run build` bundles this into dist/chat.wasm.
import { exportPlugin } from '@switchboard/plugin/component';
import { chat } from './chat.js';

export const guest = exportPlugin(chat);
