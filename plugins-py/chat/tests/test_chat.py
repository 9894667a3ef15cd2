"""The chat plugin against TestHost: the scenarios of plugins-js/chat's
tests and plugins/chat's, so the three builds cannot drift."""

import json
import unittest
from typing import List

from switchboard_plugin import HANDLED, PASS, ErrorCode, Json, Outcome, reject
from switchboard_plugin.testing import TestHost, rejection

from chat import EVENT, Chat


def setup() -> TestHost:
    """c1, c2 and c3 in room ``a``, c4 in room ``b``, c5 in none."""
    return TestHost.with_members(
        [("c1", "a"), ("c2", "a"), ("c3", "a"), ("c4", "b"), ("c5", None)]
    )


def say(plugin: Chat, host: TestHost, sender: str, data: Json) -> Outcome:
    """Calls ``on_event`` the way the host does: with the client as it is now."""
    return plugin.on_event(host, host.client(sender), EVENT, json.dumps(data))


def chat_heard_by(host: TestHost, client: str) -> List[Json]:
    """What ``client`` heard of the chat, leaving out room notices."""
    return [data for event, data in host.sent_to(client) if event == EVENT]


def fresh() -> Chat:
    return Chat("{}")


class ChatTest(unittest.TestCase):
    def test_a_message_reaches_every_other_member_with_from_and_text(self) -> None:
        host = setup()
        self.assertEqual(say(fresh(), host, "c1", {"text": "hello"}), HANDLED)
        for member in ["c2", "c3"]:
            self.assertEqual(chat_heard_by(host, member), [{"from": "c1", "text": "hello"}])

    def test_the_sender_gets_nothing_back_and_other_rooms_and_none_hear_nothing(self) -> None:
        host = setup()
        say(fresh(), host, "c1", {"text": "hello"})
        self.assertEqual(chat_heard_by(host, "c1"), [])
        self.assertEqual(host.sent_to("c4"), [])
        self.assertEqual(host.sent_to("c5"), [])

    def test_unknown_fields_are_not_forwarded(self) -> None:
        host = setup()
        say(fresh(), host, "c2", {"text": "hi", "from": "forged", "html": "<b>hi</b>"})
        self.assertEqual(chat_heard_by(host, "c1"), [{"from": "c2", "text": "hi"}])

    def test_messages_arrive_in_the_order_sent(self) -> None:
        plugin = fresh()
        host = setup()
        for text in ["one", "two", "three"]:
            say(plugin, host, "c3", {"text": text})
        self.assertEqual(
            chat_heard_by(host, "c1"),
            [{"from": "c3", "text": text} for text in ["one", "two", "three"]],
        )

    def test_a_lone_member_is_handled_and_nobody_hears(self) -> None:
        host = TestHost.with_members([("c1", "solo")])
        self.assertEqual(say(fresh(), host, "c1", {"text": "anyone?"}), HANDLED)
        self.assertEqual(host.sent(), [])

    def test_outside_a_room_is_not_in_room_and_nothing_is_sent(self) -> None:
        host = setup()
        self.assertEqual(rejection(say(fresh(), host, "c5", {"text": "hello"})), ErrorCode.NOT_IN_ROOM)
        self.assertEqual([sent for sent in host.sent() if sent.event == EVENT], [])

    def test_max_chars_counts_unicode_scalar_values(self) -> None:
        plugin = Chat('{"max_chars": 3}')
        host = setup()
        # Three scalar values, nine bytes in UTF-8; then three outside the
        # BMP (two UTF-16 units each); then four.
        self.assertEqual(say(plugin, host, "c1", {"text": "日本語"}), HANDLED)
        self.assertEqual(say(plugin, host, "c1", {"text": "🎉🎉🎉"}), HANDLED)
        self.assertEqual(
            say(plugin, host, "c1", {"text": "日本語!"}),
            reject(ErrorCode.INVALID_MESSAGE, "text longer than 3 characters"),
        )
        self.assertEqual(len(chat_heard_by(host, "c2")), 2)

    def test_too_long_a_text_is_invalid_message_before_not_in_room(self) -> None:
        host = setup()
        self.assertEqual(
            say(Chat('{"max_chars": 2}'), host, "c5", {"text": "abc"}),
            reject(ErrorCode.INVALID_MESSAGE, "text longer than 2 characters"),
        )

    def test_the_default_limit_is_the_schema_limit_of_2000_characters(self) -> None:
        host = setup()
        self.assertEqual(say(fresh(), host, "c1", {"text": "é" * 2000}), HANDLED)
        self.assertEqual(
            say(fresh(), host, "c1", {"text": "é" * 2001}),
            reject(ErrorCode.INVALID_MESSAGE, "text longer than 2000 characters"),
        )

    def test_malformed_data_is_invalid_message(self) -> None:
        host = setup()
        plugin = fresh()
        for data in ["", "[]", "{}", '{"text": 5}', '{"text": null}']:
            with self.subTest(data=data):
                outcome = plugin.on_event(host, host.client("c1"), EVENT, data)
                self.assertEqual(rejection(outcome), ErrorCode.INVALID_MESSAGE)

    def test_other_events_pass(self) -> None:
        host = setup()
        for event in ["room:join", "sdp:offer", "chat:typing"]:
            with self.subTest(event=event):
                self.assertEqual(fresh().on_event(host, host.client("c1"), event, '{"text":"x"}'), PASS)

    def test_max_chars_may_only_lower_the_limit(self) -> None:
        host = setup()
        self.assertEqual(
            rejection(say(Chat('{"max_chars": 1}'), host, "c1", {"text": "ab"})),
            ErrorCode.INVALID_MESSAGE,
        )
        self.assertEqual(say(Chat('{"max_chars": 2000}'), host, "c1", {"text": "a" * 2000}), HANDLED)

    def test_a_bad_config_is_refused_with_a_message_naming_the_chat_config(self) -> None:
        configs = [
            '{"max_chars": 0}',
            '{"max_chars": 2001}',
            '{"max_chars": -1}',
            '{"max_chars": 2.5}',
            '{"max_chars": "100"}',
            '{"max_chars": true}',
            '{"max_char": 100}',
            "[]",
            "",
            "null",
        ]
        for config in configs:
            with self.subTest(config=config):
                with self.assertRaisesRegex(ValueError, "^chat config"):
                    Chat(config)

    def test_describes_chat_message_with_its_schema_and_no_hooks(self) -> None:
        descriptor = Chat.describe()
        self.assertEqual((descriptor.name, descriptor.version, descriptor.hooks), ("chat", "0.1.0", []))
        self.assertEqual(len(descriptor.events), 1)
        self.assertEqual(descriptor.events[0].name, "chat:message")
        self.assertEqual(
            descriptor.events[0].schema,
            {
                "type": "object",
                "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000}},
                "required": ["text"],
            },
        )


if __name__ == "__main__":
    unittest.main()
