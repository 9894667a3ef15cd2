import type { Envelope } from './protocol.js';

export function encode(event: string, data: object, id?: string): string {
  return JSON.stringify(id === undefined ? { event, data } : { event, id, data });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads one server frame. The server always sends `data`, so a frame
 * without it is as broken as one that is not JSON: both throw, and the
 * client reports them rather than guessing.
 */
export function decode(text: string): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new Error(`server sent a frame that is not JSON: ${text.slice(0, 200)}`, { cause });
  }
  if (!isObject(value) || typeof value.event !== 'string' || !isObject(value.data)) {
    throw new Error(`server sent a frame that is not an envelope: ${text.slice(0, 200)}`);
  }
  if (value.id !== undefined && typeof value.id !== 'string') {
    throw new Error(`server sent a frame whose id is not a string: ${text.slice(0, 200)}`);
  }
  return value.id === undefined
    ? { event: value.event, data: value.data }
    : { event: value.event, id: value.id, data: value.data };
}
