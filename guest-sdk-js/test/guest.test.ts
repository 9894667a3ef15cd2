import { describe, expect, test } from 'vitest';
import { clientIdFromBits, describeError, fromWit, guestExports, hostConsole, some } from '../src/guest.js';
import { configTable, handled, pass, reject, relayTo, reply, type Handlers, type Plugin } from '../src/index.js';
import { TestHost, rejection } from '../src/testing.js';

/** A plugin whose single instance's handlers a test picks. */
function pluginWith(handlers: Handlers, config: (text: string) => void = () => undefined): Plugin {
  return {
    describe: () => ({
      name: 'probe',
      version: '1.2.3',
      events: [{ name: 'probe:go', schema: { type: 'object', required: ['x'] } }, { name: 'room:join' }],
      hooks: ['timer'],
    }),
    create(text) {
      config(text);
      return handlers;
    },
  };
}

const client = { id: 'c1', userId: 'alice', room: 'r' };

describe('guestExports', () => {
  test('describe serializes each schema and defaults hooks to none', () => {
    const exports = guestExports(pluginWith({}), new TestHost());
    expect(exports.describe()).toEqual({
      name: 'probe',
      version: '1.2.3',
      events: [{ name: 'probe:go', schema: '{"type":"object","required":["x"]}' }, { name: 'room:join' }],
      hooks: ['timer'],
    });
    const plain: Plugin = { describe: () => ({ name: 'p', version: '1', events: [] }), create: () => ({}) };
    expect(guestExports(plain, new TestHost()).describe().hooks).toEqual([]);
  });

  test('a refused config is thrown as a string, the `err` of the WIT result', () => {
    const exports = guestExports(
      pluginWith({}, (text) => {
        if (text !== '{}') throw new Error(`bad config ${text}`);
      }),
      new TestHost(),
    );
    let thrown: unknown;
    try {
      exports.init('[]');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBe('bad config []');
    exports.init('{}');
  });

  test('a second init is refused, so a running instance is never replaced', () => {
    const exports = guestExports(pluginWith({}), new TestHost());
    exports.init('{}');
    expect(() => { exports.init('{}'); }).toThrow();
  });

  test('a call before init fails the call and says so in the log', () => {
    const host = new TestHost();
    const exports = guestExports(pluginWith({}), host);
    expect(() => exports.onEvent(client, 'probe:go', '{}')).toThrow('on-event before init');
    expect(host.logs()).toHaveLength(1);
  });

  test('a handler that throws logs its message and stack at error, then fails the call', () => {
    const host = new TestHost();
    const exports = guestExports(
      pluginWith({
        onEvent() {
          throw new TypeError('no such thing');
        },
        onTimer() {
          // Plain JS may throw anything; the log still says what.
          // eslint-disable-next-line @typescript-eslint/only-throw-error
          throw 'a bare string';
        },
      }),
      host,
    );
    exports.init('{}');

    expect(() => exports.onEvent(client, 'probe:go', '{}')).toThrow('no such thing');
    expect(() => { exports.onTimer('r', 'tick'); }).toThrow();

    const logs = host.logs();
    expect(logs).toHaveLength(2);
    const [level, message] = logs[0] ?? [];
    expect(level).toBe('error');
    expect(message).toMatch(/^probe: on-event threw TypeError: no such thing\n\s+at /);
    expect(message).toContain('guest.test.ts');
    expect(logs[1]).toEqual(['error', 'probe: on-timer threw a bare string']);
  });

  test('missing handlers pass, and the present ones are called with the host', () => {
    const host = new TestHost();
    const seen: string[] = [];
    const exports = guestExports(
      pluginWith({
        onConnect: (h, c) => {
          expect(h).toBe(host);
          seen.push(`connect ${c.id}`);
        },
        onTimer: (_h, room, tag) => seen.push(`timer ${room} ${tag}`),
      }),
      host,
    );
    exports.init('{}');
    expect(exports.onEvent(client, 'probe:go', '{}')).toEqual(pass());
    expect(exports.onAuth(client, 'token', undefined)).toEqual(pass());
    exports.onConnect(client);
    exports.onTimer('r', 'tick');
    exports.onDisconnect(client);
    expect(seen).toEqual(['connect c1', 'timer r tick']);
  });

  test('relay ids arrive as numbers and reach the plugin as 16 hex digits', () => {
    const host = new TestHost();
    const relays: unknown[] = [];
    const exports = guestExports(pluginWith({ onRelay: (_h, relay) => (relays.push(relay), pass()) }), host);
    exports.init('{}');
    exports.onRelay({ event: 'sdp-offer', sender: 0x1an, target: 0xfedcba9876543210n, sameRoom: true });
    exports.onRelay({ event: 'ice-candidate', sender: 2n, sameRoom: false });
    expect(relays).toEqual([
      { event: 'sdp-offer', eventName: 'sdp:offer', sender: '000000000000001a', target: 'fedcba9876543210', sameRoom: true },
      { event: 'ice-candidate', eventName: 'ice:candidate', sender: '0000000000000002', sameRoom: false },
    ]);
  });
});

describe('WIT options lifted as null (componentize-qjs)', () => {
  test('reach the plugin as undefined: fields left out, arguments undefined', () => {
    const host = new TestHost();
    const seen: unknown[] = [];
    const exports = guestExports(
      pluginWith({
        onAuth: (_h, c, _token, roomId) => (seen.push(c, roomId), pass()),
        onEvent: (_h, c) => (seen.push(c), pass()),
        onRelay: (_h, relay) => (seen.push(relay), pass()),
      }),
      host,
    );
    exports.init('{}');
    // What QuickJS hands the exports for `none`, which jco's types call
    // undefined (hence `as never`).
    const bare = { id: 'c1', userId: null, role: null, roomClaim: null, room: null };
    exports.onAuth({ ...bare } as never, 'token', null as never);
    exports.onEvent({ ...bare, userId: 'alice', room: 'r' } as never, 'probe:go', '{}');
    exports.onRelay({ event: 'sdp-offer', sender: 2n, target: null, sameRoom: false } as never);
    expect(seen).toStrictEqual([
      { id: 'c1' },
      undefined,
      { id: 'c1', userId: 'alice', room: 'r' },
      { event: 'sdp-offer', eventName: 'sdp:offer', sender: '0000000000000002', sameRoom: false },
    ]);
  });

  test('some and fromWit keep every value that is not null', () => {
    expect(some(null)).toBeUndefined();
    expect(some('')).toBe('');
    expect(some(0)).toBe(0);
    expect(fromWit({ a: null, b: undefined, c: false, d: '' })).toStrictEqual({ b: undefined, c: false, d: '' });
  });
});

test('clientIdFromBits writes all 64 bits', () => {
  expect(clientIdFromBits(0n)).toBe('0000000000000000');
  expect(clientIdFromBits(2n ** 64n - 1n)).toBe('ffffffffffffffff');
});

describe('onRelay by default', () => {
  const bob = '00000000000000b0';
  const carol = '00000000000000c0';

  function scene(): TestHost {
    const host = TestHost.withMembers([['a', 'r'], [bob, 'r'], [carol, 'r']]);
    return host;
  }

  test('is onEvent with the wire name, the sender and the data, and a relay to the target delivers', () => {
    const host = scene();
    const calls: string[] = [];
    const handlers: Handlers = {
      onEvent: (_h, from, event, data) => {
        calls.push(`${from.id} ${event} ${data}`);
        return relayTo(bob);
      },
    };
    const relay = host.relay('a', 'sdp-offer', bob, '{"to":"x","sdp":"v=0"}');
    expect(host.onRelay(handlers, relay)).toEqual({ tag: 'deliver' });
    expect(calls).toEqual(['a sdp:offer {"to":"x","sdp":"v=0"}']);
  });

  test('a relay elsewhere than `to` is refused; other outcomes carry over', () => {
    const host = scene();
    const relay = host.relay('a', 'sdp-answer', bob, '{}');
    expect(rejection(host.onRelay({ onEvent: () => relayTo(carol) }, relay))).toBe('internal');
    expect(host.onRelay({ onEvent: () => handled() }, relay)).toEqual(handled());
    expect(host.onRelay({ onEvent: () => reply('x:y', { a: 1 }) }, relay)).toEqual(reply('x:y', { a: 1 }));
    expect(host.onRelay({ onEvent: () => reject('forbidden', 'no') }, relay)).toEqual(reject('forbidden', 'no'));
    expect(host.onRelay({}, relay)).toEqual(pass());
  });

  test('a sender that is gone passes', () => {
    const host = scene();
    const relay = { ...host.relay('a', 'sdp-offer', bob, '{}'), sender: 'ghost' };
    expect(host.onRelay({ onEvent: () => handled() }, relay)).toEqual(pass());
  });
});

describe('describeError', () => {
  test('gives the name, message and stack, whichever way the engine writes the stack', () => {
    const node = new RangeError('too far');
    expect(describeError(node)).toBe(node.stack);
    const frames = new Error('boom');
    frames.stack = 'handler@bundle.js:3:9\n';
    expect(describeError(frames)).toBe('Error: boom\nhandler@bundle.js:3:9\n');
    const bare = new TypeError('no stack');
    bare.stack = '';
    expect(describeError(bare)).toBe('TypeError: no stack');
    expect(describeError(42)).toBe('42');
  });
});

describe('configTable', () => {
  test('gives the table of a config that has only the keys named', () => {
    expect(configTable('probe', '{}', ['a'])).toEqual({});
    expect(configTable('probe', '{"a": 1, "b": [2]}', ['a', 'b'])).toEqual({ a: 1, b: [2] });
  });

  test('refuses what is not a JSON object, or names another key, saying so', () => {
    expect(() => configTable('probe', '{', ['a'])).toThrow(/^probe config: /);
    for (const config of ['[]', 'null', '3']) {
      expect(() => configTable('probe', config, ['a'])).toThrow('probe config: expected an object');
    }
    expect(() => configTable('probe', '{"a": 1, "c": 2, "d": 3}', ['a', 'b'])).toThrow(
      'probe config: unknown field `c`, `d`, expected `a` or `b`',
    );
  });
});

describe('hostConsole', () => {
  test('each method logs one line at its level, values joined as Node prints them', () => {
    const host = new TestHost();
    const console = hostConsole(host);
    console.log('joined', 2, { a: [1] }, null);
    console.info('info');
    console.warn('careful');
    console.error(new TypeError('bad'));
    console.debug('detail');
    console.trace('finer');
    const logs = host.logs();
    expect(logs.map(([level]) => level)).toEqual(['info', 'info', 'warn', 'error', 'debug', 'trace']);
    expect(logs[0]?.[1]).toBe('joined 2 {"a":[1]} null');
    expect(logs[3]?.[1]).toMatch(/^TypeError: bad\n/);
  });

  test('a value JSON cannot show is printed with String', () => {
    const host = new TestHost();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    hostConsole(host).log(10n, cyclic, undefined);
    expect(host.logs()).toEqual([['info', '10 [object Object] undefined']]);
  });
});
