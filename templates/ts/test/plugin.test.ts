import { ErrorCode, reply } from '@switchboard/plugin';
import { TestHost, rejection } from '@switchboard/plugin/testing';
import { expect, test } from 'vitest';
import { EVENT, plugin } from '../src/plugin.js';

test('a member gets its text back with its room', () => {
  const host = TestHost.withMembers([['c1', 'lobby'], ['c2', 'lobby']]);
  const handlers = plugin.create('{}');
  const outcome = handlers.onEvent?.(host, host.client('c1'), EVENT, '{"text":"hi","extra":1}');
  expect(outcome).toEqual(reply(EVENT, { text: 'hi', room: 'lobby' }));
  expect(host.sentTo('c1')).toEqual([['room:peer-joined', expect.anything()]]);
});

test('outside a room is NOT_IN_ROOM', () => {
  const host = TestHost.withMembers([['c1', undefined]]);
  const outcome = plugin.create('{}').onEvent?.(host, host.client('c1'), EVENT, '{"text":"hi"}');
  expect(outcome && rejection(outcome)).toBe(ErrorCode.NOT_IN_ROOM);
});
