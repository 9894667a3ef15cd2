#!/usr/bin/env python3
"""`python3 build.py` builds dist/{{name}}.wasm; `python3 build.py test`
runs the unit tests. Both put the Switchboard Python SDK on the path.

The build installs the pinned componentize-py (requirements.txt) into
.venv the first time, and again when requirements.txt changes; the build
also finds what else you install there.
"""

import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
SDK = "{{sdk_py}}"
VENV = HERE / ".venv"
OUT = HERE / "dist" / "{{name}}.wasm"


def componentize_py() -> Path:
    requirements = (HERE / "requirements.txt").read_text()
    installed = VENV / "requirements.installed"
    if not installed.exists() or installed.read_text() != requirements:
        print(f"==> installing {requirements.strip()} into {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--disable-pip-version-check", "-r", "requirements.txt"], cwd=HERE, check=True)
        installed.write_text(requirements)
    return VENV / "bin" / "componentize-py"


def build() -> None:
    OUT.parent.mkdir(exist_ok=True)
    command = [
        str(componentize_py()),
        "--wit-path", "wit",
        "--world", "plugin",
        "componentize", "app",
        "-p", ".",
        "-p", SDK,
        "-o", str(OUT),
    ]
    # VIRTUAL_ENV: componentize-py bundles that environment's site-packages.
    env = {**os.environ, "VIRTUAL_ENV": str(VENV)}
    subprocess.run(command, cwd=HERE, env=env, check=True)
    print(f"==> built {OUT.relative_to(HERE)}")


def test() -> None:
    env = {**os.environ, "PYTHONPATH": SDK}
    unittest = [sys.executable, "-B", "-m", "unittest", "discover", "-s", "tests"]
    sys.exit(subprocess.run(unittest, cwd=HERE, env=env).returncode)


if __name__ == "__main__":
    if sys.argv[1:] == []:
        build()
    elif sys.argv[1:] == ["test"]:
        test()
    else:
        sys.exit("usage: python3 build.py [test]")
