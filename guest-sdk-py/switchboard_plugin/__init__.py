"""Write Switchboard plugins in Python.

A plugin is a subclass of :class:`Plugin`: ``describe()`` names it and what
it handles, ``__init__(config)`` builds one instance from its config, and
its ``on_*`` methods decide about one call each, asking the :class:`Host`
to do things. ``export_plugin`` (in ``switchboard_plugin.component``) turns
the class into the component's exports; ``TestHost`` (in
``switchboard_plugin.testing``) runs the same methods natively, without
wasm, under ``unittest``.

The types are the WIT's (``wit/switchboard.wit``), in the SDK's own
classes so that plugin code and its tests never import the bindings that
componentize-py generates inside a component. Two things change at the
seam: every client id is a string of 16 lowercase hex digits, also in
:class:`Relay`, where the WIT passes the number, and outbound ``data`` and
metadata are dicts, which the SDK writes as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List, Optional, Protocol, Union

__all__ = [
    "DELIVER",
    "HANDLED",
    "PASS",
    "Accept",
    "AuthOutcome",
    "ClientId",
    "ClientInfo",
    "Deliver",
    "Descriptor",
    "ErrorCode",
    "EventDecl",
    "Handled",
    "Hook",
    "Host",
    "Identity",
    "Json",
    "JsonObject",
    "LogLevel",
    "Outcome",
    "Pass",
    "Peer",
    "Plugin",
    "Refuse",
    "Reject",
    "Relay",
    "RelayEvent",
    "RelayOutcome",
    "RelayTo",
    "Reply",
    "RoomId",
    "accept",
    "client_id_from_bits",
    "refuse",
    "reject",
    "relay_to",
    "reply",
    "to_json",
]

ClientId = str
"""A connection's id: 16 lowercase hex digits, as its client sees it."""
RoomId = str
"""A room id: 1 to 128 characters."""

Json = Union[None, bool, int, float, str, List["Json"], Dict[str, "Json"]]
JsonObject = Dict[str, Json]
"""The ``data`` of a message and a peer's metadata are JSON objects."""


class ErrorCode(Enum):
    """The protocol's error codes a plugin may answer with, by the names
    clients see on the wire (``NOT_IN_ROOM``); the values are the WIT's
    cases. ``RATE_LIMITED``, ``RESUME_FAILED`` and ``PLUGIN_ERROR`` are the
    host's own."""

    INVALID_MESSAGE = "invalid-message"
    UNKNOWN_EVENT = "unknown-event"
    NOT_AUTHENTICATED = "not-authenticated"
    AUTH_FAILED = "auth-failed"
    ALREADY_IN_ROOM = "already-in-room"
    NOT_IN_ROOM = "not-in-room"
    PEER_NOT_FOUND = "peer-not-found"
    ROOM_FULL = "room-full"
    FORBIDDEN = "forbidden"
    INTERNAL = "internal"


class RelayEvent(Enum):
    """The events one client sends another; the values are the wire names."""

    SDP_OFFER = "sdp:offer"
    SDP_ANSWER = "sdp:answer"
    ICE_CANDIDATE = "ice:candidate"


class Hook(Enum):
    """Calls a plugin asks for besides the events it declares."""

    CONNECT = "connect"
    AUTH = "auth"
    DISCONNECT = "disconnect"
    TIMER = "timer"


class LogLevel(Enum):
    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


# The records have slots and are not frozen: the SDK builds a few per call,
# and a frozen dataclass sets each field through `object.__setattr__`,
# three times slower to build.


@dataclass(slots=True)
class ClientInfo:
    """What the host knows about one connection, at the time of the call."""

    id: ClientId
    user_id: Optional[str] = None
    """The token's ``sub``; None before a successful auth."""
    role: Optional[str] = None
    """The token's ``role`` claim."""
    room_claim: Optional[str] = None
    """The token's ``room`` claim; None means any room."""
    room: Optional[RoomId] = None
    """The room the client is in."""


@dataclass(slots=True)
class Identity:
    """A verified identity, from an auth plugin."""

    user_id: str
    role: Optional[str] = None
    room_claim: Optional[str] = None


@dataclass(slots=True)
class Peer:
    """A member of a room, as PROTOCOL.md's ``Peer``."""

    client_id: ClientId
    user_id: str
    metadata: str
    """JSON text of an object."""


@dataclass(slots=True)
class Relay:
    """A relay event to route: only what deciding its route takes. Its data
    is there on request (``host.relay_data()``), and so is the sender's
    :class:`ClientInfo` (``host.client_info(relay.sender)``)."""

    event: RelayEvent
    sender: ClientId
    target: Optional[ClientId]
    """The client ``data.to`` names; None when ``to`` is not a client id."""
    same_room: bool
    """Whether the target is in the sender's room at the time of the call."""


@dataclass(slots=True)
class EventDecl:
    name: str
    """1 to 64 characters of ``[a-z0-9:._-]``."""
    schema: Optional[JsonObject] = None
    """A JSON Schema for ``data``: for custom events. The host knows the
    schemas of the events PROTOCOL.md defines."""


@dataclass(slots=True)
class Descriptor:
    name: str
    version: str
    events: List[EventDecl]
    hooks: List[Hook] = field(default_factory=list)


# Outcomes. `PASS` is an `Outcome`, a `RelayOutcome` and an `AuthOutcome`;
# each other case belongs to the unions that have it.


@dataclass(slots=True)
class Pass:
    """Not mine: the next plugin in the chain decides."""


@dataclass(slots=True)
class Handled:
    """Done; nothing more is sent to the sender."""


@dataclass(slots=True)
class Deliver:
    """A relay event goes to its target, with ``to`` replaced by ``from``."""


@dataclass(slots=True)
class Reply:
    """Answers the sender; the host adds the correlation id."""

    event: str
    data: str
    """JSON text of an object: build it with :func:`reply`."""


@dataclass(slots=True)
class RelayTo:
    """Delivers the event to ``client``, with ``to`` replaced by ``from``."""

    client: ClientId


@dataclass(slots=True)
class Reject:
    """Answers the sender with a protocol error."""

    code: ErrorCode
    message: str


@dataclass(slots=True)
class Accept:
    """Accepts a token as this identity."""

    identity: Identity


@dataclass(slots=True)
class Refuse:
    """Refuses a token; the reason is shown to the client."""

    reason: str


PASS = Pass()
HANDLED = Handled()
DELIVER = Deliver()

Outcome = Union[Pass, Reply, RelayTo, Reject, Handled]
RelayOutcome = Union[Pass, Deliver, Reply, Reject, Handled]
AuthOutcome = Union[Pass, Accept, Refuse]


def to_json(value: Json) -> str:
    """JSON text as the SDK writes it for the host: compact, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def reply(event: str, data: JsonObject) -> Reply:
    """Answers the sender with ``event`` and ``data``."""
    return Reply(event, to_json(data))


def reject(code: ErrorCode, message: str) -> Reject:
    """Answers the sender with a protocol error."""
    return Reject(code, message)


def relay_to(client: ClientId) -> RelayTo:
    return RelayTo(client)


def accept(user_id: str, role: Optional[str] = None, room_claim: Optional[str] = None) -> Accept:
    return Accept(Identity(user_id, role, room_claim))


def refuse(reason: str) -> Refuse:
    return Refuse(reason)


def client_id_from_bits(bits: int) -> ClientId:
    """A client id from the number the WIT's ``relay`` passes: 16 hex digits."""
    return format(bits, "016x")


class Host(Protocol):
    """What the host offers a plugin, one method per WIT import. Every call
    is synchronous; sends are queued and go out after the plugin returns,
    its answer first. In a component it is the real host; in tests,
    ``TestHost``."""

    def send(self, client: ClientId, event: str, data: JsonObject) -> None:
        """Queue an event for one client."""

    def broadcast(
        self, room: RoomId, event: str, data: JsonObject, except_: Optional[ClientId] = None
    ) -> None:
        """Queue an event for every member of ``room`` but ``except_``."""

    def join_room(
        self, client: ClientId, room: RoomId, metadata: Optional[JsonObject] = None
    ) -> Union[List[Peer], ErrorCode]:
        """Adds a client to a room; the host itself tells the other members
        (``room:peer-joined``). Returns them, oldest first, or the error
        code that refused the join."""

    def leave_room(self, client: ClientId) -> Optional[RoomId]:
        """The room the client left (None if it was in none); the host
        tells the others (``room:peer-left``)."""

    def room_members(self, room: RoomId) -> List[Peer]:
        """Oldest first; empty when the room does not exist."""

    def client_info(self, client: ClientId) -> Optional[ClientInfo]:
        """None when the client is not connected (WIT: ``lookup-client``)."""

    def kv_get(self, room: RoomId, key: str) -> Optional[str]:
        """Storage scoped to a room and this plugin; it ends with the room."""

    def kv_set(self, room: RoomId, key: str, value: str) -> None: ...

    def kv_delete(self, room: RoomId, key: str) -> None: ...

    def set_timer(self, room: RoomId, delay_ms: int, tag: str) -> None:
        """Calls ``on_timer(room, tag)`` after ``delay_ms``, if the room
        still exists then."""

    def kick(self, client: ClientId, reason: str) -> None:
        """Closes the client's connection with code 4009."""

    def log(self, level: LogLevel, message: str) -> None: ...

    def now(self) -> int:
        """Unix time in milliseconds."""

    def relay_data(self) -> str:
        """The JSON text of the relay event's data; empty outside
        ``on_relay``."""


class Plugin:
    """A plugin: subclass it, implement ``describe`` and the calls you
    declared, and export the class with ``export_plugin``.

    The host builds one instance per component instance with ``__init__``,
    may run several at once, recycle one after a fault, or swap in a new
    version at any time: state that must outlive a call belongs in room
    storage (``host.kv_set``), not in ``self``.

    A method that raises fails its call: the traceback goes to the server's
    log, the sender gets ``PLUGIN_ERROR`` and what the call queued is
    dropped. An exception in ``__init__`` refuses the config instead, with
    its message.
    """

    @classmethod
    def describe(cls) -> Descriptor:
        raise NotImplementedError(f"{cls.__name__}.describe")

    def __init__(self, config: str) -> None:
        """``config`` is the JSON text of the plugin's table in the server
        config (``{}`` when there is none)."""

    def on_connect(self, host: Host, client: ClientInfo) -> None:
        """A client connected (hook ``Hook.CONNECT``)."""

    def on_auth(
        self, host: Host, client: ClientInfo, token: str, room_id: Optional[str]
    ) -> AuthOutcome:
        """A token to verify (hook ``Hook.AUTH``)."""
        return PASS

    def on_event(self, host: Host, client: ClientInfo, event: str, data: str) -> Outcome:
        """One event the plugin declared, but for the relay events. ``data``
        is JSON text of an object, already checked against the schema."""
        return PASS

    def on_relay(self, host: Host, relay: Relay) -> RelayOutcome:
        """A relay event the plugin declared. By default ``on_event`` with
        the sender's info and the event's data, both asked of the host; its
        ``RelayTo`` of the target means ``DELIVER``."""
        client = host.client_info(relay.sender)
        if client is None:
            return PASS
        outcome = self.on_event(host, client, relay.event.value, host.relay_data())
        if not isinstance(outcome, RelayTo):
            return outcome
        if relay.target is None or relay.target == outcome.client:
            return DELIVER
        return reject(ErrorCode.INTERNAL, "a relay event goes only to the client its `to` names")

    def on_disconnect(self, host: Host, client: ClientInfo) -> None:
        """A client's connection ended (hook ``Hook.DISCONNECT``)."""

    def on_timer(self, host: Host, room: RoomId, tag: str) -> None:
        """A timer set with ``host.set_timer`` fired (hook ``Hook.TIMER``)."""
