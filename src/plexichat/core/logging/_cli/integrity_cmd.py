"""``plexichat-logs keys init|export-public DIR`` and ``plexichat-logs verify DIR``.

Keys are never taken on the command line: ``verify`` reads ``--key-file`` (the auditor key),
``--public-key`` (a public key file) or ``PLEXICHAT_LOG_AUDITOR_KEY``, and otherwise the
auditor key found in the directory's key folder, saying so. Exit codes: 0 intact, 1 tampering
or loss found, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from .._config.sources import resolve
from .._core.errors import ConfigError
from ..integrity import VerifyReport, export_public_key, init_keys, verify_directory
from ..integrity._keys import AUDITOR_FILE, key_directory


def register(sub: Any) -> None:
    """Add the ``keys`` group and the ``verify`` command."""
    keys = sub.add_parser("keys", help="integrity keys of a log directory")
    ksub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    ksub.required = True
    init = ksub.add_parser("init", help="create the host key state and the auditor key")
    init.add_argument("directory", nargs="?", help="log directory (default: configured)")
    init.set_defaults(handler=run_init)
    export = ksub.add_parser("export-public", help="print the public verification key")
    export.add_argument("directory", nargs="?", help="log directory (default: configured)")
    export.set_defaults(handler=run_export)

    verify = sub.add_parser(
        "verify", help="check the hash chain, tags and signed checkpoints of a log directory"
    )
    verify.add_argument("directory", nargs="?", help="log directory (default: configured)")
    verify.add_argument(
        "--key-file", metavar="FILE", help="auditor key file (names the exact record)"
    )
    verify.add_argument(
        "--public-key", metavar="FILE", help="public key file (names the checkpoint interval)"
    )
    verify.add_argument(
        "--witness", metavar="PATH", help="witness directory to compare (default: configured)"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=run_verify)


def _settings(directory: str | None) -> tuple[Path, Path | None, str | None]:
    cfg = resolve().config
    log_dir = Path(directory) if directory else cfg.directory
    return log_dir, cfg.integrity_key_directory, cfg.integrity_witness


def _fail(command: str, message: str) -> int:
    print(f"plexichat-logs {command}: {message}", file=sys.stderr)
    return 2


def run_init(args: argparse.Namespace) -> int:
    """Create the keys of a directory (nothing happens when they exist)."""
    try:
        log_dir, key_dir, _ = _settings(args.directory)
    except ConfigError as exc:
        return _fail("keys init", str(exc))
    kdir = key_directory(log_dir, key_dir)
    try:
        created = init_keys(log_dir, key_dir, announce=False)
    except OSError as exc:
        return _fail("keys init", f"cannot create keys in {kdir}: {exc.strerror or exc}")
    if created:
        print(
            f"created integrity keys in {kdir}\n"
            f"auditor key: {kdir / AUDITOR_FILE}\n"
            "Move the auditor key OFF this host (keep it somewhere safe, then delete it here):"
            "\na key left beside the logs proves less, because whoever can rewrite the logs can"
            " rewrite it too. Verify later with:\n"
            f"  plexichat-logs verify {log_dir} --key-file /safe/place/{AUDITOR_FILE}"
        )
    else:
        print(f"integrity keys already exist in {kdir}; nothing changed")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Print the public verification key (``ed25519:<base64>``)."""
    try:
        log_dir, key_dir, _ = _settings(args.directory)
        print(export_public_key(log_dir, key_dir))
    except (ConfigError, ValueError) as exc:
        return _fail("keys export-public", str(exc))
    return 0


def _print_report(report: VerifyReport) -> None:
    print(
        f"checked {report.files} file(s), {report.streams} stream(s), {report.records} "
        f"record(s), {report.checkpoints} checkpoint(s) with the {report.key}"
    )
    if report.key_on_host:
        print(
            "WARNING: the key came from this host's key folder; a key kept beside the logs "
            "proves less (whoever can rewrite the logs can replace it): use --key-file with "
            "the copy kept offline"
        )
    if report.live_streams:
        print(f"{report.live_streams} stream(s) still being written: their open tail is not sealed")
    for f in report.findings:
        where = Path(f.file).name + (f" line {f.line}" if f.line is not None else "")
        seq = f" seq {f.seq}" if f.seq is not None else ""
        print(f"{f.kind}: {where}{seq} (stream {f.stream or '-'}): {f.detail}")
    print("OK: intact" if report.ok else f"FAILED: {len(report.findings)} problem(s) found")


def run_verify(args: argparse.Namespace) -> int:
    """Verify a directory: 0 intact, 1 problems found, 2 usage error."""
    try:
        log_dir, key_dir, configured_witness = _settings(args.directory)
    except ConfigError as exc:
        return _fail("verify", str(exc))
    witness = args.witness or configured_witness
    notes: list[str] = []
    if witness and witness.startswith(("http://", "https://")):
        if args.witness:
            return _fail(
                "verify",
                f"--witness {witness!r}: an HTTP witness cannot be read back from here; save "
                "the checkpoints it received to a file and pass --witness FILE",
            )
        notes.append(
            f"the configured witness {witness} is an HTTP endpoint: not compared (save its "
            "checkpoints to a file and pass --witness FILE)"
        )
        witness = None
    try:
        report = verify_directory(
            log_dir,
            key_file=args.key_file,
            public_key_file=args.public_key,
            key_dir=key_dir,
            witness=witness,
        )
    except (ValueError, OSError) as exc:
        return _fail("verify", str(exc))
    except Exception as exc:  # noqa: BLE001 - a verifier bug must still give a clear answer
        return _fail("verify", f"verification stopped on an unexpected error: {exc!r}")
    report.notes.extend(notes)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict()).decode() + "\n")
    else:
        _print_report(report)
    return 0 if report.ok else 1
