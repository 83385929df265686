"""The ``make run`` demo: a small shop, served in-process, that keeps the log server busy.

:class:`DemoTraffic` runs, in its own daemon thread and asyncio loop, a real FastAPI shop
wrapped with ``add_logging_middleware`` and drives it through ``httpx.ASGITransport``:
product pages, searches, orders and logins with skewed latencies, 4xx and 5xx answers
(tracebacks included), SQL on an instrumented SQLAlchemy engine (slow queries too), custom
metrics, a fulfilment worker, an admin changing settings (audit records) and attacks the
threat detector catches: brute-force bursts of failed logins and injection probes.

Example:
    >>> from plexichat.core.logging import configure_logging
    >>> configure_logging(directory="logs", **demo_config_overrides())  # doctest: +SKIP
    >>> demo = DemoTraffic()
    >>> demo.start()  # doctest: +SKIP
    >>> demo.stop()
    True
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import get_logger
from .._core.context import context_executor, log_context
from .._core.errors import error_reporter
from .._core.levels import LogCategory
from ..integrations.fastapi import add_logging_middleware
from ..performance_logger import performance_logger, record_metric, timer
from ..security_logger import get_audit_logger, get_security_logger

__all__ = ["DemoTraffic", "LoginIn", "OrderIn", "SettingsIn", "demo_config_overrides"]

USERS = {"alice": "10.0.1.17", "bob": "10.0.1.23", "carol": "10.0.2.5", "dave": "192.168.7.40"}
USERS |= {"erin": "172.16.4.9", "frank": "10.0.3.88"}
ADMIN, PASSWORD = "carol", "correct horse battery staple"
PRODUCTS: tuple[str, ...] = ("usb-c cable", "mechanical keyboard", "noise cancelling headphones")
PRODUCTS += ("desk lamp", "standing desk", "webcam", "monitor arm", "laptop stand", "coffee mug")
SEARCHES = ("cable", "keyboard", "headphones", "desk", "lamp", "mug", "4k webcam", "usb hub")
PROBES: tuple[str, ...] = ("' OR 1=1 --", "1 UNION SELECT name, password FROM users")
PROBES += ("../../etc/passwd", "<script>alert(document.cookie)</script>")
PROBES += ("<img src=x onerror=alert(1)>",)
SPRAYED = ("root", "test", "guest", "support", "oracle", "postgres", "ubuntu", "info", "sales")
AGENTS: tuple[str, ...] = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0", "okhttp/4.12.0")
AGENTS += ("Mozilla/5.0 (Macintosh) Safari/17.4", "Mozilla/5.0 (iPhone) Mobile/15E148")
VISITS = {"products": 28, "product": 30, "search": 15, "order": 12, "login": 13, "admin": 2}
STOCK = 40
_SAFE_QUERY = re.compile(r"[\w .,-]{1,64}")
_SCHEMA = (
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id TEXT, product_id INT, quantity INT, "
    "total REAL, created REAL)",
)
_BEST_SELLERS = (
    "WITH RECURSIVE sales(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM sales WHERE n < :rows) "
    "SELECT p.id, p.name, count(*) AS sold FROM sales JOIN products p ON p.id = 1 + sales.n % "
    ":products GROUP BY p.id, p.name ORDER BY sold DESC LIMIT 5"
)
Rows = list[tuple[Any, ...]]
Job = Callable[[], Awaitable[None]]


def demo_config_overrides(*, history_interval: float = 5.0) -> dict[str, Any]:
    """The ``configure_logging`` settings the demo needs (give the directory alongside).

    Every level reaches the files; the console stays off (the demo writes dozens of records
    a second: the web viewer shows them); system metrics are sampled and metric history is
    written every ``history_interval`` seconds, so charts fill within seconds; security
    events, threat detection and the audit trail are on.
    """
    return {
        "level": "DEBUG",
        "console_enabled": False,
        "flush_interval": 0.5,
        "performance_enabled": True,
        "performance_interval": history_interval,
        "metrics_history_interval": history_interval,
        "security_enabled": True,
        "threat_detection_enabled": True,
        "audit_enabled": True,
    }


class OrderIn(BaseModel):
    """The body of ``POST /orders``."""

    product_id: int
    quantity: int
    payment: str = "card"


class LoginIn(BaseModel):
    """The body of ``POST /login``."""

    username: str
    password: str


class SettingsIn(BaseModel):
    """The body of ``PUT /admin/settings``."""

    discount_percent: int


class _Database:
    """The shop's tables in in-memory SQLite, used from one worker thread (in the caller's
    log context). With SQLAlchemy the engine is instrumented (query metrics, slow-query
    records, pool gauges); without it, statements are timed here and logged as DATABASE
    records with ``performance_data``."""

    def __init__(self, slow_threshold: float) -> None:
        self.slow_threshold = slow_threshold
        self.rows_per_second = 1e6  # of the best-sellers query, measured by _open
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="plexichat-demo-db")
        self._executor = context_executor(self._pool)
        self._engine: Any = None
        self._conn: Any = None
        self._log = get_logger("demo.shop.db")

    def _open(self) -> None:
        name = f"file:shop-{uuid.uuid4().hex[:8]}?mode=memory&cache=shared"
        try:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import QueuePool

            from ..integrations.sqlalchemy import instrument_engine

            self._engine = create_engine(
                f"sqlite:///{name}&uri=true",
                poolclass=QueuePool,
                connect_args={"check_same_thread": False},
            )
            instrument_engine(self._engine, slow_query_threshold=self.slow_threshold, name="shop")
        except ImportError:
            import sqlite3

            self._conn = sqlite3.connect(name, uri=True, check_same_thread=False)
        for statement in _SCHEMA:
            self._execute(statement)
        for i, product in enumerate(PRODUCTS, 1):
            params = {"id": i, "name": product, "price": round(9.99 + i * 37 % 240, 2)}
            self._execute("INSERT INTO products VALUES (:id, :name, :price)", params)
        start = time.perf_counter()
        self._execute(_BEST_SELLERS, {"rows": 20_000, "products": len(PRODUCTS)})
        self.rows_per_second = 20_000 / max(time.perf_counter() - start, 1e-4)
        perf = {"rows_per_second": round(self.rows_per_second)}
        self._log.info(
            "Shop database ready: %d products", len(PRODUCTS),
            category=LogCategory.DATABASE, performance_data=perf,
        )  # fmt: skip

    def _execute(self, sql: str, params: dict[str, Any] | None = None) -> Rows:
        if self._engine is not None:
            from sqlalchemy import text

            with self._engine.begin() as conn:
                result = conn.execute(text(sql), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        start = time.perf_counter()
        with self._conn:
            rows: Rows = self._conn.execute(sql, params or {}).fetchall()
        took = time.perf_counter() - start
        slow = took >= self.slow_threshold
        self._log.log(
            30 if slow else 10, "%s query (%s, %.1f ms)", "Slow" if slow else "Ran",
            sql.split(None, 1)[0].upper(), took * 1000, category=LogCategory.DATABASE,
            performance_data={"duration_ms": round(took * 1000, 3), "rows": len(rows)},
        )  # fmt: skip
        return rows

    async def run(self, sql: str, params: dict[str, Any] | None = None) -> Rows:
        """Run one statement on the database thread."""
        return await asyncio.wrap_future(self._executor.submit(self._execute, sql, params))

    async def open(self) -> None:
        """Create and fill the tables; measure how fast SQLite runs the best-sellers query."""
        await asyncio.wrap_future(self._executor.submit(self._open))

    def close(self) -> None:
        """Let the statement in flight finish, then release the database."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._engine is not None:
            self._engine.dispose()
        if self._conn is not None:
            self._conn.close()


class _ClientContext:
    """ASGI middleware outside the logging one: the client address from ``X-Forwarded-For``
    (as behind a proxy) and the signed-in user (``X-Demo-User``, standing in for a session
    cookie), bound into the log context of the whole request, access record included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", ()))
        ip = headers.get(b"x-forwarded-for", b"").decode("latin-1")
        user = headers.get(b"x-demo-user", b"").decode("latin-1")
        if ip and scope["type"] == "http":
            scope = {**scope, "client": (ip, 0)}
        with log_context(**{k: v for k, v in (("user_id", user), ("ip_address", ip)) if v}):
            await self.app(scope, receive, send)


@contextmanager
def _reported(what: str) -> Iterator[None]:
    """Report an exception of the block once on stderr instead of raising it."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - one failed step never stops the demo
        error_reporter.report(f"demo-{what}", f"demo {what} failed: {exc!r}")


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


class _Shop:
    """The shop's state, its FastAPI application and its fulfilment worker."""

    def __init__(self, rng: random.Random, db: _Database, slow_query_rate: float) -> None:
        self.rng, self.db, self.slow_query_rate = rng, db, slow_query_rate
        self.orders: asyncio.Queue[int] = asyncio.Queue()
        self.order_ids = itertools.count(1001)
        self.stock = dict.fromkeys(range(1, len(PRODUCTS) + 1), STOCK)
        self.settings = {"discount_percent": 10}
        self.log = get_logger("demo.shop")

    async def work(self, base: float) -> None:
        """Simulated latency: log-normal around ``base`` seconds, 2% of calls 8x slower."""
        slow = 8.0 if self.rng.random() < 0.02 else 1.0
        await asyncio.sleep(min(3.0, self.rng.lognormvariate(math.log(base), 0.5) * slow))

    def app(self) -> FastAPI:
        """The shop: products, search, orders, login and an admin page."""
        shop = FastAPI(title="Demo shop", openapi_url=None, docs_url=None, redoc_url=None)
        rng, log, db = self.rng, self.log, self.db

        @shop.get("/products")
        async def products(page: int = 1) -> Rows:
            await self.work(0.015)
            if rng.random() < self.slow_query_rate:
                log.info("Best sellers expired from the cache", category=LogCategory.CACHE)
                rows = int(db.rows_per_second * rng.uniform(0.12, 0.45))
                await db.run(_BEST_SELLERS, {"rows": rows, "products": len(PRODUCTS)})
            else:
                log.debug("Best sellers served from the cache", category=LogCategory.CACHE)
            sql = "SELECT id, name, price FROM products ORDER BY name LIMIT 5 OFFSET :skip"
            return await db.run(sql, {"skip": (page - 1) * 5})

        @shop.get("/products/{product_id}")
        async def product(product_id: int) -> dict[str, Any]:
            await self.work(0.01)
            sql = "SELECT name, price FROM products WHERE id = :id"
            found = await db.run(sql, {"id": product_id})
            if not found:
                raise HTTPException(404, f"no product {product_id}")
            if rng.random() < 0.012:  # a latent bug: an unhandled exception, answered 500
                raise KeyError(f"price_tier_{product_id}")
            name, price = found[0]
            return {"id": product_id, "name": name, "price": price, "stock": self.stock[product_id]}

        @shop.get("/search")
        async def search(q: str, request: Request) -> list[str]:
            if not _SAFE_QUERY.fullmatch(q):  # the detector tells which attack it was
                get_security_logger().log_event(
                    "suspicious_activity", "medium", ip_address=_ip(request), endpoint="/search",
                    action="search", details={"query": q},
                )  # fmt: skip
                raise HTTPException(400, "search terms may hold letters, digits and spaces")
            await self.work(0.04)
            if rng.random() < 0.01:
                try:
                    raise TimeoutError("search index did not answer within 2 s")
                except TimeoutError:
                    log.exception("Search backend timed out", category=LogCategory.NETWORK)
                raise HTTPException(503, "search is unavailable, try again")
            sql = "SELECT name FROM products WHERE name LIKE :q"
            found = [name for (name,) in await db.run(sql, {"q": f"%{q.split()[-1]}%"})]
            record_metric("search_results", len(found), "count")
            log.debug("Search for %r: %d results", q, len(found), category=LogCategory.API)
            return found

        @shop.post("/orders", status_code=201)
        async def order(body: OrderIn, request: Request) -> dict[str, Any]:
            pid, qty = body.product_id, body.quantity
            if qty < 1 or pid not in self.stock:
                raise HTTPException(422, "quantity must be at least 1 and the product must exist")
            if self.stock[pid] < qty:
                raise HTTPException(409, f"only {self.stock[pid]} left of {PRODUCTS[pid - 1]}")
            (price,) = (await db.run("SELECT price FROM products WHERE id = :id", {"id": pid}))[0]
            total = round(price * qty * (100 - self.settings["discount_percent"]) / 100, 2)
            try:
                async with timer("payment_gateway", tags={"provider": body.payment}):
                    await self.work(0.12)
                    if rng.random() < 0.035:
                        raise ConnectionError("payment provider reset the connection")
            except ConnectionError:
                log.exception("Payment failed", category=LogCategory.NETWORK, total=total)
                raise HTTPException(502, "payment failed, nothing was charged") from None
            order_id, user = next(self.order_ids), request.headers.get("x-demo-user", "")
            await db.run(
                "INSERT INTO orders VALUES (:id, :user, :pid, :qty, :total, :now)",
                {"id": order_id, "user": user, "pid": pid, "qty": qty, "total": total,
                 "now": time.time()},
            )  # fmt: skip
            self.stock[pid] -= qty
            record_metric("cart_value", total, "USD", tags={"payment": body.payment})
            performance_logger.increment("orders_total", tags={"payment": body.payment})
            meta = {"total": total, "product_id": pid, "quantity": qty}
            log.info("Order %d placed", order_id, category=LogCategory.USER, metadata=meta)
            await self.orders.put(order_id)
            performance_logger.set_gauge("queue_depth", self.orders.qsize(), "orders")
            return {"order_id": order_id, "total": total}

        @shop.post("/login")
        async def login(body: LoginIn, request: Request) -> dict[str, str]:
            async with timer("password_check"):
                await self.work(0.06)
            ok = body.username in USERS and body.password == PASSWORD
            get_security_logger().log_login_attempt(body.username, _ip(request), ok)
            if not ok:
                raise HTTPException(401, "wrong user name or password")
            return {"session": uuid.uuid4().hex}

        @shop.get("/admin/settings")
        async def settings(request: Request) -> dict[str, int]:
            user = request.headers.get("x-demo-user")
            if user != ADMIN:
                get_security_logger().log_access_denied(
                    user, "/admin/settings", ip_address=_ip(request), reason="not an admin"
                )
                raise HTTPException(403, "admins only")
            return dict(self.settings)

        @shop.put("/admin/settings")
        async def change(body: SettingsIn, request: Request) -> dict[str, int]:
            before = dict(self.settings)
            self.settings["discount_percent"] = body.discount_percent
            actor = {"user_id": request.headers.get("x-demo-user"), "ip_address": _ip(request)}
            get_audit_logger().log(
                actor, "update", "config/shop", "success", before=before,
                after=dict(self.settings), reason=f"CHG-{rng.randint(1000, 9999)}: promotion",
            )  # fmt: skip
            return dict(self.settings)

        add_logging_middleware(shop)
        shop.add_middleware(_ClientContext)  # added last: outermost
        return shop

    async def fulfil(self) -> None:
        """The warehouse worker: ships queued orders, restocks what runs low."""
        log = get_logger("demo.fulfillment")
        while True:
            order_id = await self.orders.get()
            with log_context(job="fulfillment", order_id=order_id), _reported("fulfillment"):
                async with timer("fulfillment"):
                    await asyncio.sleep(self.rng.uniform(0.2, 1.2))
                performance_logger.set_gauge("queue_depth", self.orders.qsize(), "orders")
                log.info("Order %d shipped", order_id, category=LogCategory.SYSTEM)
                for pid, left in self.stock.items():
                    if left < 5:
                        log.warning("Low stock of %s: %d left, restocking", PRODUCTS[pid - 1],
                                    left, category=LogCategory.SYSTEM)  # fmt: skip
                        self.stock[pid] = STOCK


class DemoTraffic:
    """Realistic shop traffic, attacks included, logged through the active configuration.

    Args:
        rate: visitor requests per second (Poisson arrivals; at most 64 in flight).
        first_attack_after: seconds before the first brute-force burst (probes and the first
            audit record come before it).
        attack_interval: mean seconds between brute-force bursts, each from a new address.
        attack_size: failed logins per burst (20 from one address trip the detector).
        probe_interval: mean seconds between injection probes in the search box.
        audit_interval: mean seconds between two settings changes by the admin.
        slow_query_rate: fraction of product listings that run the slow best-sellers query.
        slow_query_threshold: seconds from which a statement is logged as slow.
        seed: seed of the random choices (None: different each run).

    Raises:
        ValueError: a rate, interval, size or fraction out of range.
    """

    def __init__(
        self,
        *,
        rate: float = 10.0,
        first_attack_after: float = 15.0,
        attack_interval: float = 180.0,
        attack_size: int = 30,
        probe_interval: float = 45.0,
        audit_interval: float = 90.0,
        slow_query_rate: float = 0.04,
        slow_query_threshold: float = 0.1,
        seed: int | None = None,
    ) -> None:
        positive = (rate, attack_interval, probe_interval, audit_interval, slow_query_threshold)
        if min(positive) <= 0 or first_attack_after < 0 or attack_size < 1:
            raise ValueError(
                "invalid demo traffic settings: rate, intervals and slow_query_threshold must "
                f"be > 0 (got {positive}), first_attack_after >= 0 (got {first_attack_after}) "
                f"and attack_size >= 1 (got {attack_size})"
            )
        if not 0 <= slow_query_rate <= 1:
            raise ValueError(f"invalid slow_query_rate {slow_query_rate!r}: expected 0..1")
        self.rate, self.attack_size, self.slow_query_rate = rate, attack_size, slow_query_rate
        self.slow_query_threshold = slow_query_threshold
        self.schedule = {  # job: (first run after, mean interval) in seconds
            "brute_force": (first_attack_after, attack_interval),
            "probe": (min(first_attack_after, probe_interval) / 2, probe_interval),
            "audit": (min(first_attack_after, audit_interval) / 3, audit_interval),
        }
        self.counts = {"requests": 0, "server_errors": 0, "brute_force": 0, "probe": 0}
        """Requests answered, answers >= 500, brute-force bursts and probes run so far."""
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the traffic thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the traffic in a daemon thread (nothing happens when it runs already)."""
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="plexichat-demo", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the traffic; True when its threads ended within ``timeout`` seconds."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        self._thread = None
        return True

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # noqa: BLE001 - the demo never takes the server down
            error_reporter.report("demo", f"the demo traffic stopped: {exc!r}")

    async def _main(self) -> None:
        db = _Database(self.slow_query_threshold)
        try:
            await db.open()
            shop = _Shop(self._rng, db, self.slow_query_rate)
            transport = httpx.ASGITransport(app=shop.app(), raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                jobs: dict[str, Job] = {
                    "brute_force": lambda: self._brute_force(client),
                    "probe": lambda: self._probe(client),
                    "audit": lambda: self._admin_change(client),
                }
                tasks = [asyncio.create_task(c) for c in (self._visitors(client), shop.fulfil())]
                for name, (first, interval) in self.schedule.items():
                    tasks.append(asyncio.create_task(self._every(first, interval, jobs[name])))
                while not self._stopping.is_set():
                    await asyncio.sleep(0.05)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            db.close()

    async def _guarded(self, step: Awaitable[None]) -> None:
        with _reported("request"):
            await step

    async def _every(self, first: float, interval: float, job: Job) -> None:
        await asyncio.sleep(first)
        while True:
            await self._guarded(job())
            await asyncio.sleep(interval * self._rng.uniform(0.8, 1.2))

    async def _visitors(self, client: httpx.AsyncClient) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                await asyncio.sleep(self._rng.expovariate(self.rate))
                if len(running) < 64:
                    task = asyncio.create_task(self._guarded(self._visit(client)))
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _send(self, client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> None:
        response = await client.request(method, url, **kw)
        self.counts["requests"] += 1
        self.counts["server_errors"] += response.status_code >= 500

    async def _visit(self, client: httpx.AsyncClient) -> None:
        rng = self._rng
        user = rng.choice(list(USERS))
        headers = {"X-Forwarded-For": USERS[user], "User-Agent": rng.choice(AGENTS)}
        action = rng.choices(list(VISITS), weights=list(VISITS.values()))[0]
        if action == "login":  # not signed in yet; one in fifteen mistypes the password
            password = PASSWORD if rng.random() < 0.93 else PASSWORD.title()
            login = {"username": user, "password": password}
            await self._send(client, "POST", "/login", json=login, headers=headers)
            return
        headers["X-Demo-User"] = user
        if action == "products":
            page = rng.choice((1, 1, 1, 2))
            await self._send(client, "GET", "/products", params={"page": page}, headers=headers)
        elif action == "product":  # one id in eleven does not exist: 404
            url = f"/products/{rng.randint(1, len(PRODUCTS) + 1)}"
            await self._send(client, "GET", url, headers=headers)
        elif action == "search":
            params = {"q": rng.choice(SEARCHES)}
            await self._send(client, "GET", "/search", params=params, headers=headers)
        elif action == "order":  # a quantity of 0 is refused: 422
            pid, qty, pay = rng.randint(1, len(PRODUCTS)), rng.choice((1, 2, 0)), "card"
            body = {"product_id": pid, "quantity": qty, "payment": rng.choice((pay, "paypal"))}
            await self._send(client, "POST", "/orders", json=body, headers=headers)
        else:  # non-admins are refused: 403 and a permission_denied event
            await self._send(client, "GET", "/admin/settings", headers=headers)

    def _attacker(self) -> str:
        net = self._rng.choice(("203.0.113", "198.51.100", "185.220.101", "45.155.205"))
        return f"{net}.{self._rng.randint(2, 254)}"

    async def _brute_force(self, client: httpx.AsyncClient) -> None:
        """Failed logins from one address: mostly "admin", a third sprayed over common names."""
        self.counts["brute_force"] += 1
        headers = {"X-Forwarded-For": self._attacker(), "User-Agent": "python-requests/2.31.0"}
        for i in range(self.attack_size):
            user = SPRAYED[i // 3 % len(SPRAYED)] if i % 3 == 2 else "admin"
            body = {"username": user, "password": self._rng.choice(("123456", "admin", "qwerty"))}
            await self._send(client, "POST", "/login", json=body, headers=headers)
            await asyncio.sleep(self._rng.uniform(0.01, 0.05))

    async def _probe(self, client: httpx.AsyncClient) -> None:
        """A scanner trying injections in the search box."""
        self.counts["probe"] += 1
        headers = {"X-Forwarded-For": self._attacker(), "User-Agent": "sqlmap/1.8.4#stable"}
        for payload in self._rng.sample(PROBES, 2):
            await self._send(client, "GET", "/search", params={"q": payload}, headers=headers)

    async def _admin_change(self, client: httpx.AsyncClient) -> None:
        headers = {"X-Forwarded-For": USERS[ADMIN], "X-Demo-User": ADMIN}
        body = {"discount_percent": self._rng.choice((0, 5, 10, 15, 20))}
        await self._send(client, "PUT", "/admin/settings", json=body, headers=headers)
