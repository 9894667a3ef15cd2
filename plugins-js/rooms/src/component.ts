// The component's entry: `npm run build` bundles this into dist/rooms.wasm.
import { exportPlugin } from '@switchboard/plugin/component';
import { rooms } from './rooms.js';

export const guest = exportPlugin(rooms);
