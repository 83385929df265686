"""Create the project's virtualenv with only a stock Python >= 3.11 (no python3-venv needed).

Debian's python3 lacks ``ensurepip`` unless python3-venv is installed; in that case the venv is
created without pip and pip's wheel is fetched from PyPI (the only network it needs) to
bootstrap it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the check matters
        print(f"Python >= 3.11 is required, this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".venv")
    python = target / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0
    ):
        return 0
    try:
        import ensurepip  # noqa: F401

        venv.EnvBuilder(with_pip=True, clear=True).create(target)
        return 0
    except Exception as exc:  # noqa: BLE001 - fall back to fetching pip
        print(f"ensurepip unavailable ({exc}); bootstrapping pip from PyPI", file=sys.stderr)
    venv.EnvBuilder(with_pip=False, clear=True).create(target)
    with urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=60) as resp:
        info = json.load(resp)
    wheel = next(u for u in info["urls"] if u["filename"].endswith(".whl"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        urllib.request.urlretrieve(wheel["url"], path)
        subprocess.run([python, f"{path}/pip", "install", "--quiet", str(path)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
