"""``plexichat-logs serve`` (the log server) and ``plexichat-logs token`` (its API tokens).

``serve`` runs :func:`~plexichat.core.logging.log_api.create_app` with uvicorn, the store's
indexer inside. Deny by default: without tokens every request but ``/health`` is refused,
unless ``--demo`` (which creates an admin token and prints it) or ``--insecure-no-auth``
(loopback only). Secrets never go on the command line: tokens come from ``token create``
or ``PLEXICHAT_LOG_API_TOKENS``, a store password from ``PLEXICHAT_LOG_STORE_URL``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from .._config.model import redact_url
from .._config.sources import resolve
from .._core.errors import ConfigError

_DEFAULT_PORT = 8000


def register(sub: Any) -> None:
    """Add the ``serve`` and ``token`` commands."""
    p = sub.add_parser("serve", help="run the log server: REST API, live tail, web viewer")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=_DEFAULT_PORT, help="port (default 8000)")
    p.add_argument("--dir", help="log directory to serve (default: PLEXICHAT_LOG_DIRECTORY)")
    p.add_argument(
        "--store",
        metavar="URL",
        help="store URL (default: PLEXICHAT_LOG_STORE_URL, else SQLite in the log directory);"
        " put passwords in PLEXICHAT_LOG_STORE_URL, not here",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="also run a demo application that produces traffic, and print an admin token",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve every request without a token (only on a loopback address)",
    )
    p.add_argument(
        "--no-index",
        action="store_true",
        help="do not index the directory (the store is filled by `plexichat-logs index`)",
    )
    p.set_defaults(handler=run_serve)

    t = sub.add_parser("token", help="create, list and revoke API tokens of the log server")
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    c = tsub.add_parser("create", help="create a token and print it (shown once)")
    c.add_argument("--role", required=True, choices=("viewer", "security", "admin"))
    c.add_argument("--name", help="a name for the audit trail (default: ROLE-ID)")
    c.add_argument("--dir", help="log directory (default: configured)")
    c.set_defaults(handler=run_token_create)
    ls = tsub.add_parser("list", help="list tokens (never the tokens themselves)")
    ls.add_argument("--dir", help="log directory (default: configured)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=run_token_list)
    r = tsub.add_parser("revoke", help="revoke a token by name or id")
    r.add_argument("token", metavar="NAME_OR_ID")
    r.add_argument("--dir", help="log directory (default: configured)")
    r.set_defaults(handler=run_token_revoke)


def _fail(command: str, message: str) -> int:
    print(f"plexichat-logs {command}: {message}", file=sys.stderr)
    return 2


def _directory(given: str | None) -> Path:
    return Path(given) if given else resolve({}).config.directory


def _token_store(args: argparse.Namespace) -> Any:
    from ..server.auth import TokenStore

    return TokenStore.for_directory(_directory(args.dir))


def run_token_create(args: argparse.Namespace) -> int:
    """Create a token; the token alone goes to stdout (scriptable), the rest to stderr."""
    try:
        token, info = _token_store(args).create(args.role, args.name)
    except ConfigError as exc:
        return _fail("token create", str(exc))
    print(
        f"created token {info.name!r} (id {info.id}, role {info.role}); it is shown only now:",
        file=sys.stderr,
    )
    print(token)
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    """List tokens: name, id, role, created, revoked."""
    try:
        tokens = _token_store(args).list()
    except ConfigError as exc:
        return _fail("token list", str(exc))
    if args.json:
        for info in tokens:
            sys.stdout.write(
                orjson.dumps(
                    {
                        "id": info.id,
                        "name": info.name,
                        "role": info.role,
                        "created": info.created,
                        "revoked": info.revoked,
                    }
                ).decode()
                + "\n"
            )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "id", "role", "created", "revoked")
    for info in tokens:
        table.add_row(info.name, info.id, info.role, info.created, info.revoked or "")
    Console().print(table)
    if not tokens:
        print("no tokens: create one with `plexichat-logs token create --role admin`")
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token (it stays listed, marked revoked; the server refuses it at once)."""
    try:
        info = _token_store(args).revoke(args.token)
    except ConfigError as exc:
        return _fail("token revoke", str(exc))
    print(f"revoked token {info.name!r} (id {info.id}) at {info.revoked}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Run the log server until interrupted."""
    import uvicorn

    from .. import configure_logging, shutdown_logging
    from ..log_api import ServerSettings, create_app
    from ..server.stream import MAX_FRAME_BYTES

    if not 0 < args.port < 65536:
        return _fail("serve", f"invalid --port {args.port}: use 1..65535")
    if args.store and urlsplit(args.store).password:
        print(
            "warning: --store holds a password, which other users can read in the process "
            "list: set PLEXICHAT_LOG_STORE_URL (or PGPASSWORD) instead",
            file=sys.stderr,
        )
    directory = _directory(args.dir)
    overrides: dict[str, Any] = {"directory": directory}
    traffic = None
    try:
        if args.demo:
            from ..server.demo import demo_config_overrides

            overrides.update(demo_config_overrides())
        config = configure_logging(**overrides)
        settings = ServerSettings.from_config(
            config,
            host=args.host,
            demo=args.demo,
            insecure_no_auth=args.insecure_no_auth,
            run_indexer=not args.no_index,
            **({"store_url": args.store} if args.store else {}),
        )
        app = create_app(settings)
        from ..server.deps import STATE_KEY

        state = getattr(app.state, STATE_KEY)
        demo_token = demo_id = None
        if args.demo:
            demo_token, info = state.tokens.create("admin", f"demo-admin-{int(time.time())}")
            demo_id = info.id
        elif not state.tokens.has_tokens() and not args.insecure_no_auth:
            print(
                "warning: no API tokens yet, so every request but /health is refused: create "
                "one with `plexichat-logs token create --role admin"
                + (f" --dir {directory}`" if args.dir else "`"),
                file=sys.stderr,
            )
    except ConfigError as exc:
        return _fail("serve", str(exc))
    url = f"http://{_url_host(args.host)}:{args.port}/"
    print(f"PlexiChat log server: {url}  (API {url}api/v2/logs, schema .../openapi.json)")
    print(
        f"  log directory {directory.absolute()}, store {redact_url(settings.effective_store_url)}"
    )
    if demo_token is not None:
        print(
            "  admin token (paste it into the viewer; revoked when the demo stops):\n"
            f"  {demo_token}"
        )
    sys.stdout.flush()
    if args.demo:
        from ..server.demo import DemoTraffic

        traffic = DemoTraffic()
        traffic.start()
    try:
        # log_config=None: uvicorn's own messages go through this logging configuration
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                log_config=None,
                access_log=False,
                ws_max_size=MAX_FRAME_BYTES,  # a client frame is a filter, never megabytes
                ws_max_queue=4,
            )
        )
        server.run()
    finally:
        if traffic is not None:
            traffic.stop()
        if demo_id is not None:
            state.tokens.revoke(demo_id)
        shutdown_logging()
    return 0


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return os.uname().nodename
    return f"[{host}]" if ":" in host else host
