"""The component's entry: `python3 build.py` builds it into
dist/{{name}}.wasm. componentize-py exports the class named ``Guest``."""

from switchboard_plugin.component import export_plugin

from plugin import Echo

Guest = export_plugin(Echo)
