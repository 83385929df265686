"""The ``make run`` demo's shop: a FastAPI application over an in-memory SQLite database.

:class:`Shop` holds the state (stock, settings, the order queue), builds the FastAPI app
(products, search, orders, login, an admin page) wrapped with ``add_logging_middleware``
and runs the fulfilment worker; :class:`Database` is its instrumented SQLite database;
:class:`ClientContext` binds the client address and user into the log context. The
traffic that drives it is :class:`~.demo.DemoTraffic`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

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

__all__ = [
    "ADMIN",
    "PASSWORD",
    "PRODUCTS",
    "STOCK",
    "USERS",
    "ClientContext",
    "Database",
    "LoginIn",
    "OrderIn",
    "SettingsIn",
    "Shop",
    "reported",
]

USERS = {"alice": "10.0.1.17", "bob": "10.0.1.23", "carol": "10.0.2.5", "dave": "192.168.7.40"}
USERS |= {"erin": "172.16.4.9", "frank": "10.0.3.88"}
"""The shop's users and the address each one comes from."""
ADMIN, PASSWORD = "carol", "correct horse battery staple"
"""The user allowed on the admin page; the password of every user."""
PRODUCTS: tuple[str, ...] = ("usb-c cable", "mechanical keyboard", "noise cancelling headphones")
PRODUCTS += ("desk lamp", "standing desk", "webcam", "monitor arm", "laptop stand", "coffee mug")
"""The catalogue; product ``i`` (from 1) is ``PRODUCTS[i - 1]``."""
STOCK = 40
"""Units of each product at start and after a restock."""
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


class Database:
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


class ClientContext:
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
def reported(what: str) -> Iterator[None]:
    """Report an exception of the block once on stderr instead of raising it."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - one failed step never stops the demo
        error_reporter.report(f"demo-{what}", f"demo {what} failed: {exc!r}")


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


class Shop:
    """The shop's state, its FastAPI application and its fulfilment worker."""

    def __init__(self, rng: random.Random, db: Database, slow_query_rate: float) -> None:
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
        shop.add_middleware(ClientContext)  # added last: outermost
        return shop

    async def fulfil(self) -> None:
        """The warehouse worker: ships queued orders, restocks what runs low."""
        log = get_logger("demo.fulfillment")
        while True:
            order_id = await self.orders.get()
            with log_context(job="fulfillment", order_id=order_id), reported("fulfillment"):
                async with timer("fulfillment"):
                    await asyncio.sleep(self.rng.uniform(0.2, 1.2))
                performance_logger.set_gauge("queue_depth", self.orders.qsize(), "orders")
                log.info("Order %d shipped", order_id, category=LogCategory.SYSTEM)
                for pid, left in self.stock.items():
                    if left < 5:
                        log.warning("Low stock of %s: %d left, restocking", PRODUCTS[pid - 1],
                                    left, category=LogCategory.SYSTEM)  # fmt: skip
                        self.stock[pid] = STOCK
