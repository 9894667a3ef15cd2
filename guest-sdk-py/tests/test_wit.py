"""The SDK's types are the WIT's: each enum's cases, each record's fields,
each host import and guest export, read from wit/switchboard.wit, so a
change to the WIT that the SDK misses fails here, natively, before a
component is built."""

import dataclasses
import re
import unittest
from enum import Enum
from pathlib import Path
from typing import Dict, List, Type

import switchboard_plugin as sdk
from switchboard_plugin.testing import TestHost

WIT = (Path(__file__).resolve().parents[2] / "wit" / "switchboard.wit").read_text()


def block(kind: str, name: str) -> str:
    match = re.search(rf"\b{kind} {name} \{{(.*?)\n\s*\}}", WIT, re.S)
    assert match is not None, f"no {kind} {name} in the WIT"
    # Doc comments name things too; only the definitions count.
    return re.sub(r"//.*", "", match.group(1))


def cases(name: str) -> List[str]:
    return re.findall(r"([a-z][a-z0-9-]*)\s*,", block("enum", name) + ",")


def fields(name: str) -> List[str]:
    return re.findall(r"([a-z][a-z0-9-]*)\s*:", block("record", name))


def funcs(interface: str) -> List[str]:
    return re.findall(r"([a-z][a-z0-9-]*)\s*:\s*func", block("interface", interface))


def python_name(wit_name: str) -> str:
    return wit_name.replace("-", "_")


class WitTest(unittest.TestCase):
    def test_enums_have_the_wit_s_cases(self) -> None:
        enums: Dict[str, Type[Enum]] = {
            "error-code": sdk.ErrorCode,
            "relay-event": sdk.RelayEvent,
            "hook": sdk.Hook,
            "log-level": sdk.LogLevel,
        }
        for wit_name, enum in enums.items():
            with self.subTest(enum=wit_name):
                self.assertEqual(
                    [member.name for member in enum],
                    [python_name(case).upper() for case in cases(wit_name)],
                )
        # The values are the WIT's cases, but for the relay events, whose
        # values are their wire names.
        self.assertEqual([code.value for code in sdk.ErrorCode], cases("error-code"))
        self.assertEqual([hook.value for hook in sdk.Hook], cases("hook"))
        self.assertEqual([level.value for level in sdk.LogLevel], cases("log-level"))

    def test_records_have_the_wit_s_fields(self) -> None:
        records = {
            "client-info": sdk.ClientInfo,
            "identity": sdk.Identity,
            "peer": sdk.Peer,
            "relay": sdk.Relay,
            "event-decl": sdk.EventDecl,
            "descriptor": sdk.Descriptor,
        }
        for wit_name, record in records.items():
            with self.subTest(record=wit_name):
                self.assertEqual(
                    [field.name for field in dataclasses.fields(record)],
                    [python_name(field) for field in fields(wit_name)],
                )

    def test_host_has_each_import(self) -> None:
        # `lookup-client` is `client_info`, as in the Rust and JS SDKs.
        expected = [
            "client_info" if name == "lookup-client" else python_name(name)
            for name in funcs("host")
        ]
        methods = [name for name in vars(sdk.Host) if not name.startswith("_")]
        self.assertEqual(methods, expected)
        for name in expected:
            self.assertTrue(callable(getattr(TestHost, name, None)), f"TestHost.{name}")

    def test_plugin_has_each_export(self) -> None:
        # `init` is the constructor.
        for name in funcs("guest"):
            with self.subTest(export=name):
                method = "__init__" if name == "init" else python_name(name)
                self.assertIn(method, vars(sdk.Plugin))


if __name__ == "__main__":
    unittest.main()
