"""What both benchmark scripts report alike: the machine, the source state, their section of
docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _first(path: str, prefix: str, sep: str) -> str | None:
    """The value of the first line of ``path`` starting with ``prefix`` (None if absent)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    found = [ln.split(sep, 1)[1].strip().strip('"') for ln in lines if ln.startswith(prefix)]
    return found[0] if found else None


def machine() -> dict[str, str]:
    """CPU, cores, RAM, Python and OS of this machine."""
    mem = _first("/proc/meminfo", "MemTotal:", ":")
    pretty = _first("/etc/os-release", "PRETTY_NAME=", "=") or platform.system()
    return {
        "cpu": _first("/proc/cpuinfo", "model name", ":") or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "ram": f"{int(mem.split()[0]) / 1024**2:.1f} GiB" if mem else "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{pretty}, kernel {platform.release()}",
    }


def source_state() -> str:
    """The git commit of the project source, marked dirty when the working tree differs."""
    cmd = ["git", "-C", str(DOC.parent.parent), "describe", "--always", "--dirty", "--abbrev=12"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip() or "?"


def write_section(name: str, text: str, *, at_top: bool) -> None:
    """Put ``text`` between the ``bench:NAME`` markers of docs/benchmarks.md; without
    markers yet, the section goes at the top (``at_top``) or is appended."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end) :]
    elif at_top:
        doc = block + "\n" + ("\n" + doc.lstrip() if doc.strip() else "")
    else:
        doc = (doc.rstrip() + "\n\n" if doc.strip() else "") + block + "\n"
    DOC.write_text(doc, encoding="utf-8")
