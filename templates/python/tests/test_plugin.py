import unittest

from switchboard_plugin import ErrorCode, reply
from switchboard_plugin.testing import TestHost, rejection

from plugin import EVENT, Echo


class EchoTest(unittest.TestCase):
    def test_a_member_gets_its_text_back_with_its_room(self) -> None:
        host = TestHost.with_members([("c1", "lobby"), ("c2", "lobby")])
        outcome = Echo("{}").on_event(host, host.client("c1"), EVENT, '{"text":"hi","extra":1}')
        self.assertEqual(outcome, reply(EVENT, {"text": "hi", "room": "lobby"}))
        # c1 heard c2 join, and nothing else.
        self.assertEqual([event for event, _ in host.sent_to("c1")], ["room:peer-joined"])

    def test_outside_a_room_is_not_in_room(self) -> None:
        host = TestHost.with_members([("c1", None)])
        outcome = Echo("{}").on_event(host, host.client("c1"), EVENT, '{"text":"hi"}')
        self.assertEqual(rejection(outcome), ErrorCode.NOT_IN_ROOM)


if __name__ == "__main__":
    unittest.main()
