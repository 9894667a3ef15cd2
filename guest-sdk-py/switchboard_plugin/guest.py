"""The exports' logic over a :class:`Plugin`, in the SDK's own types.

``component.py`` converts the bindings' values to and from these and calls
them; tests call them with a ``TestHost``, so what a failing call prints
and how it fails is tested natively.
"""

from __future__ import annotations

import sys
import traceback
from typing import Callable, Optional, Type, TypeVar

from . import Host, Plugin

T = TypeVar("T")


class Instance:
    """The one plugin object of a component instance, built by ``init``.

    The host calls ``init`` before any call but ``describe``; a call that
    comes earlier is a host bug and fails as one, and a second ``init`` is
    refused, so a running plugin is never replaced under a call.
    """

    def __init__(
        self, plugin_class: Type[Plugin], host: Host, trap: Callable[[], None] = lambda: None
    ) -> None:
        """``trap`` ends a failed call after its report; in a component it
        aborts, and natively the exception is raised on."""
        self.plugin_class = plugin_class
        self.host = host
        self._trap = trap
        self._plugin: Optional[Plugin] = None

    def init(self, config: str) -> Optional[str]:
        """Builds the plugin; the error to show the operator, if it refused
        the config (the WIT's ``result<_, string>``)."""
        try:
            if self._plugin is not None:
                return "plugin already initialised"
            self._plugin = self.plugin_class(config)
            return None
        except Exception as error:
            # The operator sees the message where the server refuses to
            # start or to swap; the traceback says where it came from.
            self._report("init")
            return str(error) or type(error).__name__
        finally:
            flush()

    def plugin(self, call: str) -> Plugin:
        if self._plugin is None:
            raise RuntimeError(f"{call} before init")
        return self._plugin

    def guarded(self, call: str, run: Callable[[], T]) -> T:
        """Runs one export. An exception is printed with its traceback to
        stderr, which the host writes to its log under the plugin's name,
        and then the call traps, so the host answers ``PLUGIN_ERROR`` and
        drops what the call queued, as for a Rust plugin's panic. Answering
        with an outcome instead would deliver the half-done call's sends.
        """
        try:
            result = run()
        except BaseException:
            self._report(call)
            flush()
            self._trap()
            raise
        flush()
        return result

    def _report(self, call: str) -> None:
        sys.stderr.write(f"{self.name()}: {call} raised\n")
        traceback.print_exc(file=sys.stderr)

    def name(self) -> str:
        try:
            return self.plugin_class.describe().name
        except Exception:
            return self.plugin_class.__name__


def flush() -> None:
    """Python buffers stdout when it is not a terminal, and the host logs a
    plugin's output once each call is over: flushing here makes a ``print``
    land with the call that wrote it. (stderr is line-buffered, and the
    SDK's report of a failure ends its lines.)"""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        # A closed stream, or a host that takes nothing: the output is
        # lost either way, and the call goes on.
        pass
