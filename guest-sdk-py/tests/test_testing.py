"""TestHost answers as the host does (the JS and Rust TestHosts' cases)."""

import unittest

from switchboard_plugin import (
    HANDLED,
    ClientInfo,
    ErrorCode,
    Identity,
    LogLevel,
    Relay,
    RelayEvent,
    reject,
    reply,
)
from switchboard_plugin.testing import TestHost, Timer, rejection, replied


def two_in_a_room() -> TestHost:
    host = TestHost()
    host.add_client("c1", "alice")
    host.add_client("c2", "bob")
    host.join_room("c1", "r")
    host.join_room("c2", "r")
    return host


class TestHostTest(unittest.TestCase):
    def test_join_returns_the_others_oldest_first_and_tells_them(self) -> None:
        host = two_in_a_room()
        host.add_client("c3", "carol")
        joined = host.join_room("c3", "r", {"name": "Carol"})
        assert isinstance(joined, list)
        self.assertEqual([peer.client_id for peer in joined], ["c1", "c2"])
        self.assertEqual(len(host.room_members("r")), 3)
        self.assertEqual(host.room_members("r")[2].metadata, '{"name":"Carol"}')
        self.assertEqual(
            host.sent_to("c1")[-1],
            (
                "room:peer-joined",
                {"roomId": "r", "peer": {"clientId": "c3", "userId": "carol", "metadata": {"name": "Carol"}}},
            ),
        )
        self.assertEqual(host.sent_to("c3"), [])
        self.assertEqual(host.client("c3").room, "r")

    def test_join_refuses_in_the_host_order(self) -> None:
        host = two_in_a_room()
        host.connect("c4")
        self.assertEqual(host.join_room("c1", "other"), ErrorCode.ALREADY_IN_ROOM)
        self.assertEqual(host.join_room("c4", "r"), ErrorCode.NOT_AUTHENTICATED)
        self.assertEqual(host.join_room("0123456789abcdef", "r"), ErrorCode.NOT_AUTHENTICATED)
        self.assertEqual(host.join_room("ghost", "r"), ErrorCode.PEER_NOT_FOUND)
        self.assertEqual(host.join_room("c1", ""), ErrorCode.INVALID_MESSAGE)
        self.assertEqual(host.join_room("c1", "é" * 129), ErrorCode.INVALID_MESSAGE)
        # 128 scalar values, 256 UTF-16 units: a valid room id.
        self.assertEqual(host.join_room("c1", "🎉" * 128), ErrorCode.ALREADY_IN_ROOM)
        self.assertEqual(host.room_members("other"), [])

    def test_a_join_opening_a_room_beyond_the_limit_is_room_full_before_the_identity(self) -> None:
        host = TestHost()
        host.set_max_rooms(1)
        host.add_client("c1", "a")
        host.add_client("c2", "b")
        host.connect("c3")
        self.assertIsInstance(host.join_room("c1", "r"), list)
        self.assertEqual(host.join_room("c2", "s"), ErrorCode.ROOM_FULL)
        self.assertIsInstance(host.join_room("c2", "r"), list)
        self.assertEqual(host.join_room("c3", "s"), ErrorCode.ROOM_FULL)

    def test_leave_tells_the_others_with_reason_left(self) -> None:
        host = two_in_a_room()
        self.assertEqual(host.leave_room("c2"), "r")
        self.assertEqual(
            host.sent_to("c1")[-1],
            ("room:peer-left", {"roomId": "r", "clientId": "c2", "reason": "left"}),
        )
        self.assertIsNone(host.client("c2").room)
        self.assertIsNone(host.leave_room("c2"))

    def test_storage_ends_with_the_room_and_a_room_that_does_not_exist_keeps_nothing(self) -> None:
        host = two_in_a_room()
        host.kv_set("r", "k", "v")
        host.kv_set("nowhere", "k", "v")
        self.assertEqual(host.kv_get("r", "k"), "v")
        self.assertIsNone(host.kv_get("nowhere", "k"))
        host.leave_room("c1")
        self.assertEqual(host.kv_get("r", "k"), "v")
        host.leave_room("c2")
        self.assertIsNone(host.kv_get("r", "k"))
        host.kv_delete("r", "k")

    def test_broadcast_skips_the_excepted_member_and_what_is_sent_is_a_copy(self) -> None:
        host = two_in_a_room()
        before = len(host.sent())
        data = {"text": "hi"}
        host.broadcast("r", "chat:message", data, "c1")
        data["text"] = "changed"
        self.assertEqual(len(host.sent()), before + 1)
        self.assertEqual(host.sent_to("c2")[-1], ("chat:message", {"text": "hi"}))

    def test_what_would_fail_the_host_call_fails_the_test_even_to_no_one(self) -> None:
        host = TestHost()
        with self.assertRaisesRegex(ValueError, "invalid event name"):
            host.broadcast("nowhere", "Chat", {})
        with self.assertRaisesRegex(ValueError, "invalid event name"):
            host.send("c1", "", {})
        with self.assertRaisesRegex(TypeError, "not a JSON object"):
            host.send("c1", "x", ["not", "an", "object"])  # type: ignore[arg-type]

    def test_what_the_host_drops_is_dropped(self) -> None:
        host = two_in_a_room()
        heard = len(host.sent())
        host.send("ghost", "x", {})
        host.kick("ghost", "spam")
        host.set_timer("", 500, "tick")
        host.set_timer("r" * 129, 500, "tick")
        self.assertEqual(len(host.sent()), heard)
        self.assertEqual(host.kicks(), [])
        self.assertEqual(host.timers(), [])

    def test_records_timers_kicks_logs_and_time(self) -> None:
        host = TestHost()
        host.add_client("c1", "alice")
        host.set_timer("r", 500, "tick")
        host.kick("c1", "spam")
        host.log(LogLevel.WARN, "careful")
        host.set_now(42)
        self.assertEqual(host.timers(), [Timer("r", 500, "tick")])
        self.assertEqual(host.kicks(), [("c1", "spam")])
        self.assertEqual(host.logs(), [(LogLevel.WARN, "careful")])
        self.assertEqual(host.now(), 42)

    def test_authenticate_replaces_the_identity_and_a_client_is_a_copy(self) -> None:
        host = TestHost()
        host.connect("c1")
        self.assertEqual(
            host.authenticate("c1", Identity("u", role="moderator")),
            ClientInfo("c1", user_id="u", role="moderator"),
        )
        self.assertEqual(
            host.authenticate("c1", Identity("v", room_claim="r")),
            ClientInfo("c1", user_id="v", room_claim="r"),
        )
        # What a call gets is a copy, as the host's is.
        seen = host.client("c1")
        seen.room = "elsewhere"
        self.assertIsNone(host.client("c1").room)
        with self.assertRaisesRegex(KeyError, "unknown client"):
            host.client("nobody")

    def test_relay_describes_the_event_as_the_host_would(self) -> None:
        host = TestHost.with_members([("a", "r"), ("b", "r"), ("c", "s")])
        self.assertEqual(
            host.relay("a", RelayEvent.SDP_OFFER, "b", '{"sdp":"x"}'),
            Relay(RelayEvent.SDP_OFFER, "a", "b", True),
        )
        self.assertEqual(host.relay_data(), '{"sdp":"x"}')
        self.assertFalse(host.relay("a", RelayEvent.ICE_CANDIDATE, "c", "{}").same_room)
        self.assertIsNone(host.relay("a", RelayEvent.ICE_CANDIDATE, "not an id", "{}").target)


class AssertionHelpersTest(unittest.TestCase):
    def test_rejection_and_replied_unwrap_their_case_and_refuse_others(self) -> None:
        self.assertEqual(rejection(reject(ErrorCode.FORBIDDEN, "no")), ErrorCode.FORBIDDEN)
        self.assertEqual(replied(reply("x:y", {"n": 1})), ("x:y", {"n": 1}))
        with self.assertRaises(AssertionError):
            rejection(HANDLED)
        with self.assertRaises(AssertionError):
            replied(HANDLED)


if __name__ == "__main__":
    unittest.main()
