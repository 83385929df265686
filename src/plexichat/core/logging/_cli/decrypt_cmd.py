"""``plexichat-logs decrypt`` and ``plexichat-logs encryption-key``: client-side field encryption.

Keys are read from key files (``--key-file``, mode 0600) or ``PLEXICHAT_LOG_ENCRYPTION_KEY``;
never from the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .._core.errors import ConfigError


def register(sub: Any) -> None:
    """Add the ``decrypt`` and ``encryption-key`` commands."""
    p = sub.add_parser(
        "decrypt",
        help="print log records with their encrypted fields revealed (JSON lines)",
        description="Read log files or directories (or - for standard input) and print each "
        "record as a JSON line with its encrypted fields decrypted. A value that cannot be "
        "decrypted becomes '<undecryptable: REASON>'. Keys come from --key-file (repeatable; "
        "every key of every file is tried by key id) or PLEXICHAT_LOG_ENCRYPTION_KEY.",
    )
    p.add_argument("paths", nargs="*", help="segment files, log directories or - (default: -)")
    _key_file_arg(p, "key files (mode 0600) holding base64 keys, one per line; repeatable")
    p.set_defaults(handler=run_decrypt)

    k = sub.add_parser(
        "encryption-key",
        help="create field encryption keys and blind-index lookups",
        description="Manage field encryption keys (never printed, never on the command line).",
    )
    ksub = k.add_subparsers(dest="key_command", metavar="ACTION")
    ksub.required = True
    new = ksub.add_parser(
        "new",
        help="write a new random key to FILE (mode 0600, never overwrites)",
        description="Write a new random 256-bit key, base64, to FILE with mode 0600 and print "
        "its key id. Point encryption_key_file at it (PLEXICHAT_LOG_ENCRYPTION_KEY_FILE).",
    )
    new.add_argument("file", help="the key file to create")
    new.set_defaults(handler=run_new_key)
    idx = ksub.add_parser(
        "blind-index",
        help="print the --where filter that finds records whose encrypted FIELD equals VALUE",
        description="Print FIELD.bidx=HEX for `plexichat-logs query --where ...`: the blind "
        "index of VALUE under the key (the field must be in blind_index_fields).",
    )
    idx.add_argument("field", help="the encrypted field, e.g. context.ip_address")
    idx.add_argument("value", help="the exact plaintext value to look for")
    _key_file_arg(idx, "key file (the first key is used)")
    idx.set_defaults(handler=run_blind_index)


def _key_file_arg(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--key-file", action="append", default=[], type=Path, metavar="FILE", help=text)


def _fail(command: str, message: str) -> int:
    print(f"plexichat-logs {command}: {message}", file=sys.stderr)
    return 2


def _keys(files: list[Path]) -> Any:
    """Every key of the files and the environment, as one key ring (first key first)."""
    from ..security.encryption import EncryptionKey, KeyRing, key_from_env, load_key_file

    keys: list[EncryptionKey] = []
    for file in files:
        keys.extend(load_key_file(file).values())
    env_key = key_from_env()
    if env_key is not None:
        keys.append(env_key)
    if not keys:
        raise ConfigError(
            "no key: give --key-file FILE (mode 0600) or set PLEXICHAT_LOG_ENCRYPTION_KEY; "
            "keys are never accepted on the command line"
        )
    return KeyRing(keys)


def _lines(name: str) -> Iterator[bytes]:
    """The lines of one input: ``-`` (standard input), a log directory or a segment file."""
    from ..sinks.reader import read_directory
    from ..sinks.segments import open_segment

    if name == "-":
        yield from sys.stdin.buffer
        return
    path = Path(name)
    if path.is_dir():
        for line in read_directory(path):
            yield line.raw
    else:
        with open_segment(path) as fh:
            yield from fh


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def run_decrypt(args: argparse.Namespace) -> int:
    """Print every record of the inputs with its fields decrypted.

    A damaged or cut-off compressed file is reported on standard error after its readable
    records; the other inputs are still read and the exit status is then 1.
    """
    from ..security.encryption_records import decrypt_record

    try:
        keys = _keys(args.key_file)
    except ConfigError as exc:
        return _fail("decrypt", str(exc))
    missing = [p for p in args.paths if p != "-" and not Path(p).exists()]
    if missing:
        return _fail("decrypt", f"{missing[0]!r} does not exist; give log files or directories")
    out = sys.stdout.buffer
    status = 0
    for name in args.paths or ["-"]:
        lines = _lines(name)
        count = 0
        while True:
            try:  # only reading errors are the file's: a closed stdout is not caught here
                raw = next(lines, None)
            except (OSError, EOFError) as exc:
                out.flush()
                print(
                    f"plexichat-logs decrypt: {name}: damaged or cut off after {count} "
                    f"records: {_reason(exc)}",
                    file=sys.stderr,
                )
                status = 1
                break
            if raw is None:
                break
            line = raw.rstrip(b"\r\n")
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                line = orjson.dumps(decrypt_record(record, keys))
            out.write(line + b"\n")
            count += 1
    out.flush()
    return status


def run_new_key(args: argparse.Namespace) -> int:
    """Create a key file and print its key id."""
    from ..security.encryption import write_key_file

    try:
        key = write_key_file(args.file)
    except ConfigError as exc:
        return _fail("encryption-key new", str(exc))
    print(f"wrote a new key to {args.file} (mode 0600); key id {key.kid}")
    print(
        "keep a copy somewhere safe: records encrypted under it cannot be read without it",
        file=sys.stderr,
    )
    return 0


def run_blind_index(args: argparse.Namespace) -> int:
    """Print ``FIELD.bidx=HEX`` for a query."""
    from ..security.encryption import blind_index
    from ..security.encryption_fields import parse_field_path

    try:
        path = parse_field_path(args.field)
        if path.whole or path.every_key:
            raise ValueError(f"name one field such as {path.root}.ip_address, not {path.text!r}")
        key = _keys(args.key_file).active
    except ValueError as exc:
        return _fail("encryption-key blind-index", str(exc))
    print(f"{path.text}.bidx={blind_index(key, args.value)}")
    return 0
