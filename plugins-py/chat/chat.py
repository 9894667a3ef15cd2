"""The example custom event ``chat:message``, as ``plugins/chat`` is in Rust
and ``plugins-js/chat`` in TypeScript, and held to the same end-to-end test.

A member of a room sends ``chat:message`` ``{"text": string(1..2000)}``;
the other members get ``chat:message`` ``{"from": <sender's client id>,
"text"}`` and the sender gets nothing back. Outside a room it is
``NOT_IN_ROOM``.

The host validates ``data`` against the declared schema but does not drop
unknown fields of custom events, so only ``text`` is ever forwarded.

Config: ``{"max_chars": n}``, 1..=2000 (default 2000). It can only lower
the schema's limit, which is declared before any config is read. A longer
text is ``INVALID_MESSAGE`` "text longer than n characters", counted in
Unicode scalar values as everywhere in the protocol, and checked before
room membership, like a schema failure.
"""

from __future__ import annotations

import json
from switchboard_plugin import (
    HANDLED,
    PASS,
    ClientInfo,
    Descriptor,
    ErrorCode,
    EventDecl,
    Host,
    Outcome,
    Plugin,
    reject,
)

EVENT = "chat:message"

SCHEMA_MAX_CHARS = 2000
"""The ``maxLength`` of ``text`` in the declared schema."""


class InvalidText(ValueError):
    """Why a message's text is refused: ``INVALID_MESSAGE``."""


class Chat(Plugin):
    @classmethod
    def describe(cls) -> Descriptor:
        schema = {
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": SCHEMA_MAX_CHARS}
            },
            "required": ["text"],
        }
        return Descriptor("chat", "0.1.0", [EventDecl(EVENT, schema)])

    def __init__(self, config: str) -> None:
        self.max_chars = max_chars_of(config)

    def on_event(self, host: Host, client: ClientInfo, event: str, data: str) -> Outcome:
        if event != EVENT:
            return PASS
        try:
            text = self.text_of(data)
        except InvalidText as error:
            return reject(ErrorCode.INVALID_MESSAGE, str(error))
        if client.room is None:
            return reject(ErrorCode.NOT_IN_ROOM, "not in a room")
        host.broadcast(client.room, EVENT, {"from": client.id, "text": text}, client.id)
        return HANDLED

    def text_of(self, data: str) -> str:
        """The message's text; ``InvalidText`` says why it is refused."""
        try:
            message = json.loads(data)
        except ValueError as error:
            raise InvalidText(f"{EVENT}: {error}") from None
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str):
            raise InvalidText(f"{EVENT}: `text` must be a string")
        # A str is a sequence of code points: Unicode scalar values, for
        # the valid UTF-8 the host passes.
        if len(text) > self.max_chars:
            raise InvalidText(f"text longer than {self.max_chars} characters")
        return text


def max_chars_of(config: str) -> int:
    """``max_chars`` of the config, the only key it may have."""
    try:
        parsed = json.loads(config)
    except ValueError as error:
        raise ValueError(f"chat config: {error}") from None
    if not isinstance(parsed, dict):
        raise ValueError("chat config: expected an object")
    unknown = sorted(key for key in parsed if key != "max_chars")
    if unknown:
        names = "`, `".join(unknown)
        raise ValueError(f"chat config: unknown field `{names}`, expected `max_chars`")
    max_chars = parsed.get("max_chars", SCHEMA_MAX_CHARS)
    # bool is an int in Python; `true` is no number of characters.
    valid = isinstance(max_chars, int) and not isinstance(max_chars, bool)
    if not valid or not 1 <= max_chars <= SCHEMA_MAX_CHARS:
        raise ValueError(
            f"chat config: `max_chars` must be between 1 and {SCHEMA_MAX_CHARS}, "
            f"not {json.dumps(max_chars)}"
        )
    return max_chars
