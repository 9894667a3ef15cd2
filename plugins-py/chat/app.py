"""The component's entry: scripts/build-py-plugins builds it into
dist/chat.wasm. componentize-py exports the class named ``Guest``."""

from switchboard_plugin.component import export_plugin

from chat import Chat

Guest = export_plugin(Chat)
