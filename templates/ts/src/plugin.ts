/**
 * `{{name}}:echo`: a member of a room sends `{"text"}` and gets it back as
 * the reply `{{name}}:echo` `{"text", "room"}`; outside a room it is
 * `NOT_IN_ROOM`. Replace it with your own policy.
 */
import { ErrorCode, pass, reject, reply, type Plugin } from '@switchboard/plugin';

export const EVENT = '{{name}}:echo';

export const plugin: Plugin = {
  describe: () => ({
    name: '{{name}}',
    version: '0.1.0',
    // A custom event comes with the JSON Schema the host checks `data`
    // against before any plugin runs.
    events: [
      {
        name: EVENT,
        schema: {
          type: 'object',
          properties: { text: { type: 'string', minLength: 1, maxLength: 500 } },
          required: ['text'],
        },
      },
    ],
  }),

  // One instance from the JSON text of its config table; throw to refuse
  // it. Keep state that must outlive a call in room storage (host.kvSet).
  create: () => ({
    onEvent(_host, client, event, data) {
      if (event !== EVENT) {
        return pass();
      }
      if (client.room === undefined) {
        return reject(ErrorCode.NOT_IN_ROOM, 'not in a room');
      }
      // The schema guarantees a string `text`; unknown fields may be there
      // too, so build the answer from the fields you define.
      const { text } = JSON.parse(data) as { text: string };
      return reply(EVENT, { text, room: client.room });
    },
  }),
};
