"""An in-memory :class:`Host` for unit tests of plugins: no wasm.

``TestHost`` is the Rust SDK's ``testing::TestHost`` in Python. It keeps
clients, rooms with ordered membership, storage and timers, and records
everything sent, kicked and logged, so a test calls a plugin's methods
directly and asserts on what happened. Like the real host, ``join_room``
and ``leave_room`` themselves tell the other members
(``room:peer-joined``, ``room:peer-left``); it answers with the host's
errors in the host's order, and drops what the host drops (a send to or a
kick of a client that is not connected, a timer for an invalid room id,
storage for a room that does not exist). What makes the host fail the
plugin's whole call (an invalid event name, data that is not an object)
raises, which fails the test.

One thing differs: any string names the client added with it ("c1" reads
better in a test than 16 hex digits).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Dict, Iterable, List, Optional, Tuple, Union

from . import (
    AuthOutcome,
    ClientId,
    ClientInfo,
    ErrorCode,
    Identity,
    Json,
    JsonObject,
    LogLevel,
    Outcome,
    Peer,
    Reject,
    Relay,
    RelayEvent,
    RelayOutcome,
    RoomId,
    Reply,
    to_json,
)

__all__ = ["Sent", "TestHost", "Timer", "rejection", "replied"]

_EVENT_NAME = re.compile(r"[a-z0-9:._-]{1,64}")
_CLIENT_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(slots=True)
class Sent:
    """One message queued for a client, its data parsed back from JSON."""

    to: ClientId
    event: str
    data: Json


@dataclass(slots=True)
class Timer:
    room: RoomId
    delay_ms: int
    tag: str


class TestHost:
    """The host in memory; see the module's documentation."""

    def __init__(self) -> None:
        self._clients: Dict[ClientId, ClientInfo] = {}
        # Members of each room, oldest first; a room exists while it has any.
        self._rooms: Dict[RoomId, List[Peer]] = {}
        self._storage: Dict[RoomId, Dict[str, str]] = {}
        self._sent: List[Sent] = []
        self._timers: List[Timer] = []
        self._kicks: List[Tuple[ClientId, str]] = []
        self._logs: List[Tuple[LogLevel, str]] = []
        self._now = 0
        self._max_rooms: Optional[int] = None
        self._relay_data = ""

    @classmethod
    def with_members(cls, members: Iterable[Tuple[ClientId, Optional[RoomId]]]) -> "TestHost":
        """A host with these clients, each authenticated with its id as
        user id and joined to its room (if any), in the order given."""
        host = cls()
        for client, room in members:
            host.add_client(client, client)
            if room is not None:
                joined = host.join_room(client, room)
                if isinstance(joined, ErrorCode):
                    raise ValueError(f"TestHost: {client} could not join {room}: {joined.name}")
        return host

    # -- the scene --------------------------------------------------------

    def connect(self, client: ClientId) -> ClientInfo:
        """A connected client that has not authenticated yet."""
        self._clients[client] = ClientInfo(client)
        return self.client(client)

    def add_client(self, client: ClientId, user_id: str) -> ClientInfo:
        """A connected client authenticated as ``user_id``, with no role or
        room claim."""
        self.connect(client)
        return self.authenticate(client, Identity(user_id))

    def authenticate(self, client: ClientId, identity: Identity) -> ClientInfo:
        """Gives a known client an identity, as a successful auth does."""
        info = replace(
            self.client(client),
            user_id=identity.user_id,
            role=identity.role,
            room_claim=identity.room_claim,
        )
        self._clients[client] = info
        return replace(info)

    def client(self, client: ClientId) -> ClientInfo:
        """The client as the host sees it now, as a plugin call gets it: a
        copy, as the host's is."""
        info = self._clients.get(client)
        if info is None:
            raise KeyError(f"TestHost: unknown client {client!r}")
        return replace(info)

    def relay(self, sender: ClientId, event: RelayEvent, to: ClientId, data: str) -> Relay:
        """A relay event from ``sender`` to ``to`` as the real host describes
        it to ``on_relay``; ``data`` (JSON text) is then what
        ``relay_data()`` returns."""
        self._relay_data = data
        room = self._room_of(sender)
        return Relay(
            event,
            sender,
            to if self._could_be_client(to) else None,
            room is not None and room == self._room_of(to),
        )

    def set_now(self, unix_ms: int) -> None:
        """Sets the clock ``now()`` reads, in unix milliseconds."""
        self._now = unix_ms

    def set_max_rooms(self, max_rooms: int) -> None:
        """The server's ``limits.max_rooms``: a join that would open one room
        more is ``ROOM_FULL``."""
        self._max_rooms = max_rooms

    # -- what happened ----------------------------------------------------

    def sent(self) -> List[Sent]:
        """Everything queued for anyone, oldest first."""
        return list(self._sent)

    def sent_to(self, client: ClientId) -> List[Tuple[str, Json]]:
        """Everything queued for one client, oldest first, as
        ``(event, data)``."""
        return [(sent.event, sent.data) for sent in self._sent if sent.to == client]

    def timers(self) -> List[Timer]:
        return list(self._timers)

    def kicks(self) -> List[Tuple[ClientId, str]]:
        """Every kick as ``(client, reason)``."""
        return list(self._kicks)

    def logs(self) -> List[Tuple[LogLevel, str]]:
        return list(self._logs)

    # -- Host -------------------------------------------------------------

    def send(self, client: ClientId, event: str, data: JsonObject) -> None:
        self._queue(client, _checked_event("send", event), _checked_object("send", data))

    def broadcast(
        self, room: RoomId, event: str, data: JsonObject, except_: Optional[ClientId] = None
    ) -> None:
        _checked_event("broadcast", event)
        _checked_object("broadcast", data)
        for peer in self._rooms.get(room, []):
            if peer.client_id != except_:
                self._queue(peer.client_id, event, data)

    def join_room(
        self, client: ClientId, room: RoomId, metadata: Optional[JsonObject] = None
    ) -> Union[List[Peer], ErrorCode]:
        """The host's checks in its order: ``PEER_NOT_FOUND`` for an id that
        cannot be a client's, ``INVALID_MESSAGE`` for an invalid room id,
        ``NOT_AUTHENTICATED`` for a client that is not connected,
        ``ALREADY_IN_ROOM``, ``ROOM_FULL`` past the max rooms,
        ``NOT_AUTHENTICATED`` for a client without a user id."""
        metadata = _checked_object("join_room", {} if metadata is None else metadata)
        if not self._could_be_client(client):
            return ErrorCode.PEER_NOT_FOUND
        if not _valid_room_id(room):
            return ErrorCode.INVALID_MESSAGE
        info = self._clients.get(client)
        if info is None:
            return ErrorCode.NOT_AUTHENTICATED
        if info.room is not None:
            return ErrorCode.ALREADY_IN_ROOM
        if room not in self._rooms and self._max_rooms is not None:
            if len(self._rooms) >= self._max_rooms:
                return ErrorCode.ROOM_FULL
        if info.user_id is None:
            return ErrorCode.NOT_AUTHENTICATED
        self._clients[client] = replace(info, room=room)
        others = self._rooms.get(room, [])
        self._rooms[room] = [*others, Peer(client, info.user_id, to_json(metadata))]
        notice: JsonObject = {
            "roomId": room,
            "peer": {"clientId": client, "userId": info.user_id, "metadata": metadata},
        }
        self.broadcast(room, "room:peer-joined", notice, client)
        return [replace(peer) for peer in others]

    def leave_room(self, client: ClientId) -> Optional[RoomId]:
        info = self._clients.get(client)
        if info is None or info.room is None:
            return None
        room = info.room
        self._clients[client] = replace(info, room=None)
        members = [peer for peer in self._rooms.get(room, []) if peer.client_id != client]
        if members:
            self._rooms[room] = members
        else:
            self._rooms.pop(room, None)
            self._storage.pop(room, None)
        self.broadcast(
            room, "room:peer-left", {"roomId": room, "clientId": client, "reason": "left"}
        )
        return room

    def room_members(self, room: RoomId) -> List[Peer]:
        return [replace(peer) for peer in self._rooms.get(room, [])]

    def client_info(self, client: ClientId) -> Optional[ClientInfo]:
        info = self._clients.get(client)
        return None if info is None else replace(info)

    def kv_get(self, room: RoomId, key: str) -> Optional[str]:
        return self._storage.get(room, {}).get(key)

    def kv_set(self, room: RoomId, key: str, value: str) -> None:
        """Dropped for a room that does not exist, as on the host."""
        if room in self._rooms:
            self._storage.setdefault(room, {})[key] = value

    def kv_delete(self, room: RoomId, key: str) -> None:
        self._storage.get(room, {}).pop(key, None)

    def set_timer(self, room: RoomId, delay_ms: int, tag: str) -> None:
        """Recorded unless ``room`` is not a valid room id, which the host
        ignores."""
        if _valid_room_id(room):
            self._timers.append(Timer(room, delay_ms, tag))

    def kick(self, client: ClientId, reason: str) -> None:
        if client in self._clients:
            self._kicks.append((client, reason))

    def log(self, level: LogLevel, message: str) -> None:
        self._logs.append((level, message))

    def now(self) -> int:
        return self._now

    def relay_data(self) -> str:
        return self._relay_data

    # -- inside -----------------------------------------------------------

    def _room_of(self, client: ClientId) -> Optional[RoomId]:
        info = self._clients.get(client)
        return None if info is None else info.room

    def _could_be_client(self, client: str) -> bool:
        """One of the clients here, or a well-formed id that names no one."""
        return client in self._clients or _CLIENT_ID.fullmatch(client) is not None

    def _queue(self, to: ClientId, event: str, data: JsonObject) -> None:
        """A send to a client that is not connected is dropped, as on the
        host. Through JSON, as the wire would: what the plugin keeps is not
        shared."""
        if to in self._clients:
            self._sent.append(Sent(to, event, json.loads(to_json(data))))


def rejection(outcome: Union[Outcome, RelayOutcome, AuthOutcome]) -> ErrorCode:
    """The code of a rejection, for assertions; raises for any other
    outcome."""
    if not isinstance(outcome, Reject):
        raise AssertionError(f"expected a rejection, got {outcome!r}")
    return outcome.code


def replied(outcome: Union[Outcome, RelayOutcome]) -> Tuple[str, Json]:
    """A reply's event and parsed data, for assertions; raises for any
    other outcome."""
    if not isinstance(outcome, Reply):
        raise AssertionError(f"expected a reply, got {outcome!r}")
    return outcome.event, json.loads(outcome.data)


def _checked_event(call: str, event: str) -> str:
    """An event name the host accepts: 1 to 64 characters of
    ``[a-z0-9:._-]``."""
    if _EVENT_NAME.fullmatch(event) is None:
        raise ValueError(f"TestHost: {call} was passed an invalid event name {event!r}")
    return event


def _checked_object(call: str, data: JsonObject) -> JsonObject:
    """``data`` and metadata must be JSON objects, or the host fails the
    call."""
    if not isinstance(data, dict):
        raise TypeError(f"TestHost: {call} was passed {data!r}, not a JSON object")
    return data


def _valid_room_id(room: str) -> bool:
    """1 to 128 Unicode scalar values, which ``len`` counts for a ``str``."""
    return 1 <= len(room) <= 128
