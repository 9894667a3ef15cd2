import { ErrorCode, handled, pass, reject, type Handlers, type Json, type Outcome } from '@switchboard/plugin';
import { TestHost, rejection } from '@switchboard/plugin/testing';
import { describe, expect, test } from 'vitest';
import { EVENT, chat } from '../src/chat.js';

/** c1, c2 and c3 in room `a`, c4 in room `b`, c5 in none. */
function setup(): TestHost {
  return TestHost.withMembers([['c1', 'a'], ['c2', 'a'], ['c3', 'a'], ['c4', 'b'], ['c5', undefined]]);
}

/** Calls `onEvent` the way the host does: with the client as it is now. */
function say(plugin: Handlers, host: TestHost, from: string, data: Json): Outcome {
  return plugin.onEvent?.(host, host.client(from), EVENT, JSON.stringify(data)) ?? pass();
}

/** What `client` heard of the chat, leaving out room notices. */
function chatHeardBy(host: TestHost, client: string): Json[] {
  return host.sentTo(client).filter(([event]) => event === EVENT).map(([, data]) => data);
}

const fresh = (): Handlers => chat.create('{}');

test('a message reaches every other member with from and text', () => {
  const host = setup();
  expect(say(fresh(), host, 'c1', { text: 'hello' })).toEqual(handled());
  for (const member of ['c2', 'c3']) {
    expect(chatHeardBy(host, member)).toEqual([{ from: 'c1', text: 'hello' }]);
  }
});

test('the sender gets nothing back, and other rooms and none hear nothing', () => {
  const host = setup();
  say(fresh(), host, 'c1', { text: 'hello' });
  expect(chatHeardBy(host, 'c1')).toEqual([]);
  expect(host.sentTo('c4')).toEqual([]);
  expect(host.sentTo('c5')).toEqual([]);
});

test('unknown fields are not forwarded', () => {
  const host = setup();
  say(fresh(), host, 'c2', { text: 'hi', from: 'forged', html: '<b>hi</b>' });
  expect(chatHeardBy(host, 'c1')).toEqual([{ from: 'c2', text: 'hi' }]);
});

test('messages arrive in the order sent', () => {
  const plugin = fresh();
  const host = setup();
  for (const text of ['one', 'two', 'three']) {
    say(plugin, host, 'c3', { text });
  }
  expect(chatHeardBy(host, 'c1')).toEqual(['one', 'two', 'three'].map((text) => ({ from: 'c3', text })));
});

test('a lone member is handled and nobody hears', () => {
  const host = TestHost.withMembers([['c1', 'solo']]);
  expect(say(fresh(), host, 'c1', { text: 'anyone?' })).toEqual(handled());
  expect(host.sent()).toEqual([]);
});

test('outside a room is NOT_IN_ROOM and nothing is sent', () => {
  const host = setup();
  expect(rejection(say(fresh(), host, 'c5', { text: 'hello' }))).toBe(ErrorCode.NOT_IN_ROOM);
  expect(host.sent().filter((sent) => sent.event === EVENT)).toEqual([]);
});

test('max_chars counts Unicode scalar values', () => {
  const plugin = chat.create('{"max_chars": 3}');
  const host = setup();
  // Three scalar values, nine bytes in UTF-8; then four, two of them
  // outside the BMP (two UTF-16 units each).
  expect(say(plugin, host, 'c1', { text: '日本語' })).toEqual(handled());
  expect(say(plugin, host, 'c1', { text: '🎉🎉🎉' })).toEqual(handled());
  expect(say(plugin, host, 'c1', { text: '日本語!' })).toEqual(
    reject(ErrorCode.INVALID_MESSAGE, 'text longer than 3 characters'),
  );
  expect(chatHeardBy(host, 'c2')).toHaveLength(2);
});

test('too long a text is INVALID_MESSAGE before NOT_IN_ROOM', () => {
  const host = setup();
  expect(say(chat.create('{"max_chars": 2}'), host, 'c5', { text: 'abc' })).toEqual(
    reject(ErrorCode.INVALID_MESSAGE, 'text longer than 2 characters'),
  );
});

test('the default limit is the schema limit of 2000 characters', () => {
  const host = setup();
  expect(say(fresh(), host, 'c1', { text: 'é'.repeat(2000) })).toEqual(handled());
  expect(say(fresh(), host, 'c1', { text: 'é'.repeat(2001) })).toEqual(
    reject(ErrorCode.INVALID_MESSAGE, 'text longer than 2000 characters'),
  );
});

test('malformed data is INVALID_MESSAGE', () => {
  const host = setup();
  const plugin = fresh();
  for (const data of ['', '[]', '{}', '{"text": 5}', '{"text": null}']) {
    const outcome = plugin.onEvent?.(host, host.client('c1'), EVENT, data);
    expect(outcome && rejection(outcome), data).toBe(ErrorCode.INVALID_MESSAGE);
  }
});

test('other events pass', () => {
  const host = setup();
  for (const event of ['room:join', 'sdp:offer', 'chat:typing']) {
    expect(fresh().onEvent?.(host, host.client('c1'), event, '{"text":"x"}'), event).toEqual(pass());
  }
});

describe('config', () => {
  test('max_chars may only lower the limit', () => {
    const host = setup();
    expect(say(chat.create('{"max_chars": 1}'), host, 'c1', { text: 'ab' }).tag).toBe('reject');
    expect(say(chat.create('{"max_chars": 2000}'), host, 'c1', { text: 'a'.repeat(2000) })).toEqual(handled());
  });

  test.each(['{"max_chars": 0}', '{"max_chars": 2001}', '{"max_chars": -1}', '{"max_chars": 2.5}', '{"max_chars": "100"}', '{"max_char": 100}', '[]', '', 'null'])(
    '%j is refused with a message naming the chat config',
    (config) => {
      expect(() => chat.create(config)).toThrow(/^chat config/);
    },
  );
});

test('describes chat:message with its schema and no hooks', () => {
  expect(chat.describe()).toEqual({
    name: 'chat',
    version: '0.1.0',
    events: [
      {
        name: 'chat:message',
        schema: {
          type: 'object',
          properties: { text: { type: 'string', minLength: 1, maxLength: 2000 } },
          required: ['text'],
        },
      },
    ],
  });
});
