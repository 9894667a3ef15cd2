"""The component's side: the real host over the WIT imports, and the
exports over a plugin class. A component's entry module says

    from switchboard_plugin.component import export_plugin
    Guest = export_plugin(MyPlugin)

It imports the bindings componentize-py generates (``wit_world``), which
exist only while building a component, so unit tests import the plugin and
``switchboard_plugin.testing``, never this module. Values are converted
here, once, between the bindings' classes and the SDK's.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Type, TypeVar, Union

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host as imports
from wit_world.imports import types as wit

from . import (
    Accept,
    AuthOutcome,
    ClientId,
    ClientInfo,
    Deliver,
    Descriptor,
    ErrorCode,
    Handled,
    Host,
    JsonObject,
    LogLevel,
    Outcome,
    Pass,
    Peer,
    Plugin,
    Refuse,
    Reject,
    Relay,
    RelayEvent,
    RelayOutcome,
    RelayTo,
    Reply,
    RoomId,
    client_id_from_bits,
    to_json,
)
from .guest import Instance

T = TypeVar("T")

# The SDK's enums and the bindings' have the same member names.
_ERROR_TO_WIT = {code: wit.ErrorCode[code.name] for code in ErrorCode}
_ERROR_FROM_WIT = {wit.ErrorCode[code.name]: code for code in ErrorCode}
_LOG_LEVEL_TO_WIT = {level: wit.LogLevel[level.name] for level in LogLevel}
_RELAY_EVENT_FROM_WIT = {wit.RelayEvent[event.name]: event for event in RelayEvent}


def _client(info: wit.ClientInfo) -> ClientInfo:
    return ClientInfo(info.id, info.user_id, info.role, info.room_claim, info.room)


def _peers(peers: List[wit.Peer]) -> List[Peer]:
    return [Peer(peer.client_id, peer.user_id, peer.metadata) for peer in peers]


class WasmHost:
    """The real host, through the component's imports."""

    def send(self, client: ClientId, event: str, data: JsonObject) -> None:
        imports.send(client, event, to_json(data))

    def broadcast(
        self, room: RoomId, event: str, data: JsonObject, except_: Optional[ClientId] = None
    ) -> None:
        imports.broadcast(room, event, to_json(data), except_)

    def join_room(
        self, client: ClientId, room: RoomId, metadata: Optional[JsonObject] = None
    ) -> Union[List[Peer], ErrorCode]:
        try:
            peers = imports.join_room(client, room, to_json({} if metadata is None else metadata))
        except Err as refused:
            # The bindings raise the `err` of a `result` import.
            return _ERROR_FROM_WIT[refused.value]
        return _peers(peers)

    def leave_room(self, client: ClientId) -> Optional[RoomId]:
        return imports.leave_room(client)

    def room_members(self, room: RoomId) -> List[Peer]:
        return _peers(imports.room_members(room))

    def client_info(self, client: ClientId) -> Optional[ClientInfo]:
        info = imports.lookup_client(client)
        return None if info is None else _client(info)

    def kv_get(self, room: RoomId, key: str) -> Optional[str]:
        return imports.kv_get(room, key)

    def kv_set(self, room: RoomId, key: str, value: str) -> None:
        imports.kv_set(room, key, value)

    def kv_delete(self, room: RoomId, key: str) -> None:
        imports.kv_delete(room, key)

    def set_timer(self, room: RoomId, delay_ms: int, tag: str) -> None:
        imports.set_timer(room, delay_ms, tag)

    def kick(self, client: ClientId, reason: str) -> None:
        imports.kick(client, reason)

    def log(self, level: LogLevel, message: str) -> None:
        imports.log(_LOG_LEVEL_TO_WIT[level], message)

    def now(self) -> int:
        return imports.now()

    def relay_data(self) -> str:
        return imports.relay_data()


HOST: Host = WasmHost()


def _descriptor(descriptor: Descriptor) -> wit.Descriptor:
    return wit.Descriptor(
        descriptor.name,
        descriptor.version,
        [
            wit.EventDecl(event.name, None if event.schema is None else to_json(event.schema))
            for event in descriptor.events
        ],
        [wit.Hook[hook.name] for hook in descriptor.hooks],
    )


def _message(reply: Reply) -> wit.Message:
    return wit.Message(reply.event, reply.data)


def _error(reject: Reject) -> wit.ProtocolError:
    return wit.ProtocolError(_ERROR_TO_WIT[reject.code], reject.message)


# Each outcome case by its class: one dict lookup per call. A value of any
# other class is the plugin's bug, and fails its call with a message that
# says what came back.
_OUTCOMES: Dict[type, Callable[..., wit.Outcome]] = {
    Pass: lambda _: wit.Outcome_Pass(),
    Handled: lambda _: wit.Outcome_Handled(),
    Reply: lambda outcome: wit.Outcome_Reply(_message(outcome)),
    RelayTo: lambda outcome: wit.Outcome_Relay(outcome.client),
    Reject: lambda outcome: wit.Outcome_Reject(_error(outcome)),
}
_RELAY_OUTCOMES: Dict[type, Callable[..., wit.RelayOutcome]] = {
    Pass: lambda _: wit.RelayOutcome_Pass(),
    Deliver: lambda _: wit.RelayOutcome_Deliver(),
    Handled: lambda _: wit.RelayOutcome_Handled(),
    Reply: lambda outcome: wit.RelayOutcome_Reply(_message(outcome)),
    Reject: lambda outcome: wit.RelayOutcome_Reject(_error(outcome)),
}
_AUTH_OUTCOMES: Dict[type, Callable[..., wit.AuthOutcome]] = {
    Pass: lambda _: wit.AuthOutcome_Pass(),
    Accept: lambda outcome: wit.AuthOutcome_Accept(
        wit.Identity(outcome.identity.user_id, outcome.identity.role, outcome.identity.room_claim)
    ),
    Refuse: lambda outcome: wit.AuthOutcome_Reject(outcome.reason),
}


def _lower(cases: Dict[type, Callable[..., T]], kind: str, method: str, value: object) -> T:
    convert = cases.get(type(value))
    if convert is None:
        raise TypeError(f"{method} returned {value!r}, which is not {kind}")
    return convert(value)


def export_plugin(plugin_class: Type[Plugin]) -> Type[exports.Guest]:
    """The class componentize-py exports as the WIT's ``guest`` interface,
    calling ``plugin_class``. Name it ``Guest`` in the entry module."""
    # A failed call traps by aborting once the SDK has printed its report:
    # raising on would have componentize-py print the traceback again,
    # and a panic message of its own, before it trapped.
    instance = Instance(plugin_class, HOST, trap=os.abort)

    class Guest(exports.Guest):
        def describe(self) -> wit.Descriptor:
            return instance.guarded("describe", lambda: _descriptor(plugin_class.describe()))

        def init(self, config: str) -> None:
            error = instance.init(config)
            if error is not None:
                raise Err(error)

        def on_connect(self, client: wit.ClientInfo) -> None:
            instance.guarded(
                "on-connect", lambda: instance.plugin("on-connect").on_connect(HOST, _client(client))
            )

        def on_auth(
            self, client: wit.ClientInfo, token: str, room_id: Optional[str]
        ) -> wit.AuthOutcome:
            def run() -> wit.AuthOutcome:
                outcome: AuthOutcome = instance.plugin("on-auth").on_auth(
                    HOST, _client(client), token, room_id
                )
                return _lower(_AUTH_OUTCOMES, "an AuthOutcome", "on_auth", outcome)

            return instance.guarded("on-auth", run)

        def on_event(self, client: wit.ClientInfo, event: str, data: str) -> wit.Outcome:
            def run() -> wit.Outcome:
                outcome: Outcome = instance.plugin("on-event").on_event(
                    HOST, _client(client), event, data
                )
                return _lower(_OUTCOMES, "an Outcome", "on_event", outcome)

            return instance.guarded("on-event", run)

        def on_relay(self, relay: wit.Relay) -> wit.RelayOutcome:
            def run() -> wit.RelayOutcome:
                target = None if relay.target is None else client_id_from_bits(relay.target)
                converted = Relay(
                    _RELAY_EVENT_FROM_WIT[relay.event],
                    client_id_from_bits(relay.sender),
                    target,
                    relay.same_room,
                )
                outcome: RelayOutcome = instance.plugin("on-relay").on_relay(HOST, converted)
                return _lower(_RELAY_OUTCOMES, "a RelayOutcome", "on_relay", outcome)

            return instance.guarded("on-relay", run)

        def on_disconnect(self, client: wit.ClientInfo) -> None:
            instance.guarded(
                "on-disconnect",
                lambda: instance.plugin("on-disconnect").on_disconnect(HOST, _client(client)),
            )

        def on_timer(self, room: str, tag: str) -> None:
            instance.guarded(
                "on-timer", lambda: instance.plugin("on-timer").on_timer(HOST, room, tag)
            )

    return Guest
