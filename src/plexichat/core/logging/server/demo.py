"""The ``make run`` demo: a small shop, served in-process, that keeps the log server busy.

:class:`DemoTraffic` runs, in its own daemon thread and asyncio loop, a real FastAPI shop
(:mod:`.demo_shop`) wrapped with ``add_logging_middleware`` and drives it through
``httpx.ASGITransport``: product pages, searches, orders and logins with skewed latencies,
4xx and 5xx answers (tracebacks included), SQL on an instrumented SQLAlchemy engine (slow
queries too), custom metrics, a fulfilment worker, an admin changing settings (audit
records) and attacks the threat detector catches: brute-force bursts of failed logins and
injection probes.

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
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .._core.errors import error_reporter
from .demo_shop import (
    ADMIN,
    PASSWORD,
    PRODUCTS,
    USERS,
    Database,
    LoginIn,
    OrderIn,
    SettingsIn,
    Shop,
    reported,
)

__all__ = ["DemoTraffic", "LoginIn", "OrderIn", "SettingsIn", "demo_config_overrides"]

SEARCHES = ("cable", "keyboard", "headphones", "desk", "lamp", "mug", "4k webcam", "usb hub")
PROBES: tuple[str, ...] = ("' OR 1=1 --", "1 UNION SELECT name, password FROM users")
PROBES += ("../../etc/passwd", "<script>alert(document.cookie)</script>")
PROBES += ("<img src=x onerror=alert(1)>",)
SPRAYED = ("root", "test", "guest", "support", "oracle", "postgres", "ubuntu", "info", "sales")
AGENTS: tuple[str, ...] = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0", "okhttp/4.12.0")
AGENTS += ("Mozilla/5.0 (Macintosh) Safari/17.4", "Mozilla/5.0 (iPhone) Mobile/15E148")
VISITS = {"products": 28, "product": 30, "search": 15, "order": 12, "login": 13, "admin": 2}
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
        db = Database(self.slow_query_threshold)
        try:
            await db.open()
            shop = Shop(self._rng, db, self.slow_query_rate)
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
        with reported("request"):
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
