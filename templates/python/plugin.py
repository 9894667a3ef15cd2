"""``{{name}}:echo``: a member of a room sends ``{"text"}`` and gets it back
as the reply ``{{name}}:echo`` ``{"text", "room"}``; outside a room it is
``NOT_IN_ROOM``. Replace it with your own policy.

Import every module at the top of a file: the component is built from a
snapshot taken after its modules were imported, and has no files at run
time to import more from.
"""

from __future__ import annotations

import json

from switchboard_plugin import (
    PASS,
    ClientInfo,
    Descriptor,
    ErrorCode,
    EventDecl,
    Host,
    Outcome,
    Plugin,
    reject,
    reply,
)

EVENT = "{{name}}:echo"


class Echo(Plugin):
    """Built once per instance by ``__init__(config)`` from the JSON text of
    its config table (the base class ignores it; override it and raise to
    refuse a config). Keep state that must outlive a call in room storage
    (``host.kv_set``), not in ``self``."""

    @classmethod
    def describe(cls) -> Descriptor:
        # A custom event comes with the JSON Schema the host checks `data`
        # against before any plugin runs.
        schema = {
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 500}},
            "required": ["text"],
        }
        return Descriptor("{{name}}", "0.1.0", [EventDecl(EVENT, schema)])

    def on_event(self, host: Host, client: ClientInfo, event: str, data: str) -> Outcome:
        if event != EVENT:
            return PASS
        if client.room is None:
            return reject(ErrorCode.NOT_IN_ROOM, "not in a room")
        # The schema guarantees a string `text`; unknown fields may be there
        # too, so build the answer from the fields you define.
        text = json.loads(data)["text"]
        return reply(EVENT, {"text": text, "room": client.room})
