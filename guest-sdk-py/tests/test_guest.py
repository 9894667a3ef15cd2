"""The exports' logic: init, the order of calls, and what a failing call
prints and how it fails."""

import contextlib
import io
import unittest
from typing import Callable, Optional, Tuple, TypeVar

from switchboard_plugin import (
    DELIVER,
    HANDLED,
    PASS,
    ClientInfo,
    Descriptor,
    ErrorCode,
    EventDecl,
    Host,
    Outcome,
    Plugin,
    RelayEvent,
    client_id_from_bits,
    reject,
    relay_to,
)
from switchboard_plugin.guest import Instance
from switchboard_plugin.testing import TestHost

T = TypeVar("T")


class Echo(Plugin):
    """Answers ``echo`` by relaying to the client the data names, raises on
    ``boom``, and refuses the config ``"no"``."""

    @classmethod
    def describe(cls) -> Descriptor:
        return Descriptor("echo", "1.0.0", [EventDecl("echo"), EventDecl("sdp:offer")])

    def __init__(self, config: str) -> None:
        if config == '"no"':
            raise ValueError("echo config: no")

    def on_event(self, host: Host, client: ClientInfo, event: str, data: str) -> Outcome:
        if data == '{"boom":true}':
            print("about to fail")
            raise RuntimeError("boom")
        return relay_to(data.strip('"'))


def captured(run: Callable[[], T]) -> Tuple[Optional[T], Optional[BaseException], str, str]:
    """What ``run`` returned or raised, and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    result, raised = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = run()
        except BaseException as error:
            raised = error
    return result, raised, out.getvalue(), err.getvalue()


class InstanceTest(unittest.TestCase):
    def setUp(self) -> None:
        self.host = TestHost.with_members([("c1", "a")])
        self.instance = Instance(Echo, self.host)

    def test_init_builds_the_plugin_once(self) -> None:
        self.assertIsNone(self.instance.init("{}"))
        self.assertEqual(self.instance.init("{}"), "plugin already initialised")

    def test_a_refused_config_is_the_error_with_its_message_and_the_traceback_on_stderr(self) -> None:
        error, raised, _, err = captured(lambda: self.instance.init('"no"'))
        self.assertIsNone(raised)
        self.assertEqual(error, "echo config: no")
        self.assertIn("echo: init raised", err)
        self.assertIn("Traceback", err)
        # It may be initialised again with a good config.
        self.assertIsNone(self.instance.init("{}"))

    def test_a_call_before_init_fails(self) -> None:
        with self.assertRaisesRegex(RuntimeError, "on-event before init"):
            self.instance.plugin("on-event")

    def test_a_raising_call_prints_its_traceback_to_stderr_and_raises_on(self) -> None:
        self.instance.init("{}")
        plugin = self.instance.plugin("on-event")
        client = self.host.client("c1")

        _, raised, out, err = captured(
            lambda: self.instance.guarded(
                "on-event", lambda: plugin.on_event(self.host, client, "echo", '{"boom":true}')
            )
        )

        self.assertIsInstance(raised, RuntimeError)
        self.assertEqual(out, "about to fail\n")
        lines = err.splitlines()
        self.assertEqual(lines[0], "echo: on-event raised")
        self.assertEqual(lines[1], "Traceback (most recent call last):")
        self.assertIn("in on_event", err)
        self.assertEqual(lines[-1], "RuntimeError: boom")

    def test_a_raising_call_traps_once_its_report_is_written(self) -> None:
        err = io.StringIO()
        trapped = []
        instance = Instance(Echo, self.host, trap=lambda: trapped.append(err.getvalue()))
        instance.init("{}")
        client = self.host.client("c1")
        plugin = instance.plugin("on-event")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            with self.assertRaises(RuntimeError):
                instance.guarded(
                    "on-event", lambda: plugin.on_event(self.host, client, "echo", '{"boom":true}')
                )
        self.assertEqual(len(trapped), 1)
        self.assertTrue(trapped[0].endswith("RuntimeError: boom\n"), trapped[0])

    def test_a_call_that_returns_prints_nothing(self) -> None:
        self.instance.init("{}")
        plugin = self.instance.plugin("on-event")
        client = self.host.client("c1")
        outcome, raised, out, err = captured(
            lambda: self.instance.guarded(
                "on-event", lambda: plugin.on_event(self.host, client, "echo", '"c2"')
            )
        )
        self.assertEqual((outcome, raised, out, err), (relay_to("c2"), None, "", ""))

    def test_the_name_in_the_log_is_the_class_s_when_describe_fails(self) -> None:
        class Nameless(Plugin):
            pass

        self.assertEqual(Instance(Nameless, self.host).name(), "Nameless")


class DefaultOnRelayTest(unittest.TestCase):
    """``on_relay`` defaults to ``on_event`` with the sender's info and data."""

    def setUp(self) -> None:
        self.host = TestHost.with_members([("c1", "a"), ("c2", "a")])
        self.plugin = Echo("{}")

    def test_relaying_to_the_target_is_deliver(self) -> None:
        relay = self.host.relay("c1", RelayEvent.SDP_OFFER, "c2", '"c2"')
        self.assertEqual(self.plugin.on_relay(self.host, relay), DELIVER)

    def test_relaying_elsewhere_is_refused(self) -> None:
        relay = self.host.relay("c1", RelayEvent.SDP_OFFER, "c2", '"c1"')
        self.assertEqual(
            self.plugin.on_relay(self.host, relay),
            reject(ErrorCode.INTERNAL, "a relay event goes only to the client its `to` names"),
        )

    def test_a_sender_that_is_gone_passes(self) -> None:
        relay = self.host.relay("0000000000000009", RelayEvent.SDP_OFFER, "c2", '"c2"')
        self.assertEqual(self.plugin.on_relay(self.host, relay), PASS)

    def test_other_outcomes_are_the_relay_s(self) -> None:
        class Handles(Plugin):
            def on_event(self, host: Host, client: ClientInfo, event: str, data: str) -> Outcome:
                return HANDLED if event == "sdp:offer" else PASS

        relay = self.host.relay("c1", RelayEvent.SDP_OFFER, "c2", "{}")
        self.assertEqual(Handles("{}").on_relay(self.host, relay), HANDLED)


class ClientIdTest(unittest.TestCase):
    def test_the_wit_s_numbers_are_16_lowercase_hex_digits(self) -> None:
        self.assertEqual(client_id_from_bits(0), "0000000000000000")
        self.assertEqual(client_id_from_bits(0xAB), "00000000000000ab")
        self.assertEqual(client_id_from_bits(2**64 - 1), "ffffffffffffffff")


if __name__ == "__main__":
    unittest.main()
