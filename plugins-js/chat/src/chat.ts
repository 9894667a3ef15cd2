/**
 * The example custom event `chat:message`, as `plugins/chat` is in Rust,
 * and held to the same end-to-end test.
 *
 * A member of a room sends `chat:message` `{"text": string(1..2000)}`; the
 * other members get `chat:message` `{"from": <sender's client id>, "text"}`
 * and the sender gets nothing back. Outside a room it is `NOT_IN_ROOM`.
 *
 * The host validates `data` against the declared schema but does not drop
 * unknown fields of custom events, so only `text` is ever forwarded.
 *
 * Config: `{"max_chars": n}`, 1..=2000 (default 2000). It can only lower
 * the schema's limit, which is declared before any config is read. A longer
 * text is `INVALID_MESSAGE` "text longer than n characters", counted in
 * Unicode scalar values as everywhere in the protocol, and checked before
 * room membership, like a schema failure.
 */
import { configTable, ErrorCode, handled, pass, reject, type Plugin } from '@switchboard/plugin';

export const EVENT = 'chat:message';

/** The `maxLength` of `text` in the declared schema. */
const SCHEMA_MAX_CHARS = 2000;

export const chat: Plugin = {
  describe: () => ({
    name: 'chat',
    version: '0.1.0',
    events: [
      {
        name: EVENT,
        schema: {
          type: 'object',
          properties: { text: { type: 'string', minLength: 1, maxLength: SCHEMA_MAX_CHARS } },
          required: ['text'],
        },
      },
    ],
  }),

  create(config) {
    const maxChars = maxCharsOf(config);
    return {
      onEvent(host, client, event, data) {
        if (event !== EVENT) {
          return pass();
        }
        const text = textOf(data, maxChars);
        if (typeof text !== 'string') {
          return reject(ErrorCode.INVALID_MESSAGE, text.error);
        }
        if (client.room === undefined) {
          return reject(ErrorCode.NOT_IN_ROOM, 'not in a room');
        }
        host.broadcast(client.room, EVENT, { from: client.id, text }, client.id);
        return handled();
      },
    };
  },
};

/** `max_chars` of the config, the only key it may have. */
function maxCharsOf(config: string): number {
  const { max_chars: maxChars } = configTable('chat', config, ['max_chars']);
  if (maxChars === undefined) {
    return SCHEMA_MAX_CHARS;
  }
  if (!Number.isInteger(maxChars) || (maxChars as number) < 1 || (maxChars as number) > SCHEMA_MAX_CHARS) {
    throw new Error(`chat config: \`max_chars\` must be between 1 and ${SCHEMA_MAX_CHARS}, not ${JSON.stringify(maxChars)}`);
  }
  return maxChars as number;
}

/** The message's text, or why it is refused. */
function textOf(data: string, maxChars: number): string | { error: string } {
  let text: unknown;
  try {
    text = (JSON.parse(data) as { text?: unknown }).text;
  } catch (error) {
    return { error: `${EVENT}: ${(error as Error).message}` };
  }
  if (typeof text !== 'string') {
    return { error: `${EVENT}: \`text\` must be a string` };
  }
  // Spreading a string yields its code points: Unicode scalar values, for
  // the valid UTF-8 the host passes.
  // eslint-disable-next-line @typescript-eslint/no-misused-spread
  if ([...text].length > maxChars) {
    return { error: `text longer than ${maxChars} characters` };
  }
  return text;
}
