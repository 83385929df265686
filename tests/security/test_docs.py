"""The Python examples of docs/security.md run as they are."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_examples() -> None:
    """The page shows the logger, detection, hooks, testing and the audit trail."""
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, tmp_path: Path) -> None:
    """Each block runs in a fresh interpreter without error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        cwd=tmp_path,
        env={**env, "PLEXICHAT_LOG_CONSOLE_ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"block {index}:\n{BLOCKS[index]}\n{done.stderr}"
