"""The servers under test: shopgraph, the bare endpoint, and the peers PostGraphile 5 and 4.

Both peers come from npm into bench/node_modules, pinned by bench/package.json; one
package name cannot be installed twice at the top level, so PostGraphile 4 is the npm
alias `postgraphile4`. PostGraphile 5 wants Node 22: on Node 20 it runs with
bench/polyfill.cjs loaded first (`Promise.withResolvers`, `Set.prototype.union`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import database
import procs
import redis
from workloads import CacheMode, Target

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
NODE_MODULES = BENCH / "node_modules"
BIN = Path(sys.executable).parent

# The npm package (top-level name in bench/node_modules) of each peer.
PEER_PACKAGES = {Target.POSTGRAPHILE5: "postgraphile", Target.POSTGRAPHILE4: "postgraphile4"}
POSTGRAPHILE5_CLI = NODE_MODULES / "postgraphile" / "dist" / "cli-run.js"
POSTGRAPHILE4_CLI = NODE_MODULES / "postgraphile4" / "cli.js"

# W0r: the key and size of the body its endpoint reads from Redis (W1's response: ~20 KB).
W0R_KEY = "bench:w0r"
W0R_BODY_BYTES = 20_183

# W1n's partner tier: a budget no load generator empties, beside the default tiers.
BENCH_TIER = "bench"
BENCH_TIERS = f"standard:1000/50,premium:5000/250,{BENCH_TIER}:10000000/1000000"


def _pinned_version(spec: str) -> str:
    """The version a package.json spec pins: `4.14.1`, also from `npm:postgraphile@4.14.1`."""
    return spec.rsplit("@", 1)[1] if spec.startswith("npm:") else spec


def installed_version(package: str) -> str | None:
    """The version of a package in bench/node_modules, or None when it is not there."""
    manifest = NODE_MODULES / package / "package.json"
    if not manifest.exists():
        return None
    return str(json.loads(manifest.read_text())["version"])


def ensure_peers(say: Callable[[str], None]) -> dict[str, str]:
    """Install bench/package.json's pins into bench/node_modules unless done already; their versions.

    A marker in node_modules records the package.json and .npmrc it was installed from: a
    tree from other pins, or hoisted by another install strategy, is removed and rebuilt.
    """
    if not shutil.which("node") or not shutil.which("npm"):
        raise RuntimeError("node and npm are needed for the peers (W5, W5b)")
    manifest = (BENCH / "package.json").read_text()
    recipe = manifest + (BENCH / ".npmrc").read_text()
    wanted = {
        name: _pinned_version(spec) for name, spec in json.loads(manifest)["dependencies"].items()
    }
    marker = NODE_MODULES / ".shopgraph-bench-install"
    if not marker.exists() or marker.read_text() != recipe:
        say(
            f"npm install {', '.join(f'{n}@{v}' for n, v in wanted.items())} into bench/node_modules"
        )
        # No lock file: one from a hoisted install would bring its layout back.
        shutil.rmtree(NODE_MODULES, ignore_errors=True)
        (BENCH / "package-lock.json").unlink(missing_ok=True)
        procs.run_checked(
            ["npm", "install", "--prefix", str(BENCH), "--install-strategy=shallow",
             "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"],
            timeout=300,
        )  # fmt: skip
        marker.write_text(recipe)
    missing = [name for name, version in wanted.items() if installed_version(name) != version]
    if missing:
        raise RuntimeError(f"npm install left {', '.join(missing)} at another version")
    return {name: str(installed_version(name)) for name in wanted}


@dataclass
class Servers:
    """Builds the servers under test and stops whatever is still running at the end."""

    db: database.BenchDatabase
    redis_url: str
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    running: list[procs.Server] = field(default_factory=list)

    def flush_redis(self) -> None:
        """Empty the bench's own Redis database (FLUSHDB, never FLUSHALL): caches start cold."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        try:
            client.flushdb()
        except redis.RedisError as error:
            raise RuntimeError(f"cannot empty Redis {self.redis_url}: {error}") from None
        finally:
            client.close()

    def shopgraph_env(
        self,
        *,
        cache: CacheMode = CacheMode.OFF,
        debug: bool = False,
        db_port: int | None = None,
        ip_budget_lifted: bool = True,
        checkout: bool = False,
    ) -> dict[str, str]:
        """The environment of shopgraph (server and CLI) in production mode.

        cache OFF: no Redis and SHOPGRAPH_CACHE_ENABLED=false (nothing cached, not even in
        memory: the workload measures the work of answering). ENTITY and RESPONSE: Redis at
        redis_url (rate limits there too, as in production) with the caches on; ENTITY sets
        SHOPGRAPH_RESPONSE_CACHE_ENABLED=false, so only the entity cache answers.
        `ip_budget_lifted=False` (W1n) keeps the default per-IP budget and adds the partner
        tier `BENCH_TIER` with a lifted one, for the client that must not be throttled.
        """
        env = {
            **os.environ,
            "SHOPGRAPH_ENV": "production",
            "SHOPGRAPH_SECRET_KEY": self.secret_key,
            # Production refuses to start without the personal-data keys; the seed's own.
            **database.KEY_ENV,
            "SHOPGRAPH_DEBUG": "true" if debug else "false",
            "SHOPGRAPH_DATABASE_URL": self.db.sqlalchemy_url(db_port),
            "SHOPGRAPH_CACHE_ENABLED": "false",
            "SHOPGRAPH_RESPONSE_CACHE_ENABLED": "true",
        }
        env.pop("SHOPGRAPH_REDIS_URL", None)
        if cache is not CacheMode.OFF:
            env["SHOPGRAPH_CACHE_ENABLED"] = "true"
            env["SHOPGRAPH_REDIS_URL"] = self.redis_url
        if cache is CacheMode.ENTITY:
            env["SHOPGRAPH_RESPONSE_CACHE_ENABLED"] = "false"
        if ip_budget_lifted:
            # One load generator on one IP is one caller: lift its cost budget so the
            # bench measures the work, not the throttle (query-cost checks stay on).
            # W1r spends ~240 points a hit at 6,000+ hits/s: far above what it restores.
            env["SHOPGRAPH_RATE_LIMIT_CAPACITY"] = "1000000000"
            env["SHOPGRAPH_RATE_LIMIT_RESTORE_RATE"] = "100000000"
        else:
            for name in ("SHOPGRAPH_RATE_LIMIT_CAPACITY", "SHOPGRAPH_RATE_LIMIT_RESTORE_RATE"):
                env.pop(name, None)
            env["SHOPGRAPH_PARTNER_TIERS"] = BENCH_TIERS
        if checkout:
            env["SHOPGRAPH_PAYMENT_GATEWAY"] = "test"
            env["SHOPGRAPH_REGISTER_MAX_PER_IP"] = "100000"
        return env

    def shopgraph(
        self,
        *,
        cache: CacheMode = CacheMode.OFF,
        debug: bool = False,
        db_port: int | None = None,
        ip_budget_lifted: bool = True,
        checkout: bool = False,
        workers: int = 1,
        instance: str = "",
    ) -> procs.Server:
        """shopgraph in production mode, 1 worker (uvicorn with uvloop and httptools, no access log).

        `workers` > 1 (bench/scale_out.py): uvicorn's worker processes on one socket;
        `instance` tells the logs of several servers of one kind apart.
        """
        port = procs.free_port()
        env = self.shopgraph_env(
            cache=cache,
            debug=debug,
            db_port=db_port,
            ip_budget_lifted=ip_budget_lifted,
            checkout=checkout,
        )
        argv = [str(BIN / "shopgraph"), "serve", "--port", str(port), "--workers", str(workers)]
        name = f"shopgraph-{cache}" + ("-debug" if debug else "")
        if workers > 1:
            name += f"-{workers}workers"
        name += instance
        if not ip_budget_lifted:
            name = "shopgraph-flooded"
        if checkout:
            name = "shopgraph-checkout"
        return self._start(procs.Server(name, argv, port, WORK / "logs" / f"{name}.log"), env)

    def bare(self) -> procs.Server:
        """W0's bare Starlette app, served by uvicorn the same way."""
        port = procs.free_port()
        argv = [
            str(BIN / "python"), "-m", "uvicorn", "bare_app:app", "--app-dir", str(BENCH),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        return self._start(
            procs.Server("bare", argv, port, WORK / "logs" / "bare.log"), dict(os.environ)
        )

    def bare_redis(self) -> procs.Server:
        """W0r's bare endpoint answering a W1-sized JSON body from the bench's Redis.

        The body (`W0R_BODY_BYTES` of JSON) is stored under its key in the bench's own Redis
        database before the server starts.
        """
        body = b'{"data":{"filler":"' + b"x" * (W0R_BODY_BYTES - 21) + b'"}}'
        client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        try:
            client.set(W0R_KEY, body)
        finally:
            client.close()
        port = procs.free_port()
        argv = [
            str(BIN / "python"), "-m", "uvicorn", "bare_app:redis_app", "--app-dir", str(BENCH),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        env = {**os.environ, "BENCH_REDIS_URL": self.redis_url, "BENCH_REDIS_KEY": W0R_KEY}
        log = WORK / "logs" / "bare-redis.log"
        return self._start(procs.Server("bare-redis", argv, port, log), env)

    def postgraphile5(self, *, db_port: int | None = None) -> procs.Server:
        """PostGraphile 5 (Amber preset, bench/graphile.config.mjs): no mutations, GraphiQL or explain."""
        port = procs.free_port()
        node = shutil.which("node") or "node"
        argv = [
            node, "--require", str(BENCH / "polyfill.cjs"), str(POSTGRAPHILE5_CLI),
            "-C", str(BENCH / "graphile.config.mjs"), "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        env = {**os.environ, "NODE_ENV": "production", "BENCH_PG_DSN": self.db.dsn(db_port)}
        log = WORK / "logs" / "postgraphile5.log"
        return self._start(procs.Server("postgraphile5", argv, port, log), env)

    def postgraphile4(self, *, db_port: int | None = None) -> procs.Server:
        """PostGraphile 4 over the same database: no GraphiQL, no mutations, no query log."""
        port = procs.free_port()
        argv = [
            shutil.which("node") or "node", str(POSTGRAPHILE4_CLI),
            "--connection", self.db.dsn(db_port), "--schema", "public",
            "--host", "127.0.0.1", "--port", str(port), "--max-pool-size", "10",
            "--disable-query-log", "--disable-graphiql", "--disable-default-mutations",
        ]  # fmt: skip
        env = {**os.environ, "NODE_ENV": "production"}
        log = WORK / "logs" / "postgraphile4.log"
        return self._start(procs.Server("postgraphile4", argv, port, log), env)

    def peer(self, target: Target, *, db_port: int | None = None) -> procs.Server:
        """The PostGraphile server of a peer target."""
        if target is Target.POSTGRAPHILE5:
            return self.postgraphile5(db_port=db_port)
        if target is Target.POSTGRAPHILE4:
            return self.postgraphile4(db_port=db_port)
        raise ValueError(f"{target} is not a peer")

    def for_target(self, target: Target, cache: CacheMode = CacheMode.OFF) -> procs.Server:
        """A fresh production server for a workload's target (and shopgraph's cache mode)."""
        if target is Target.SHOPGRAPH:
            return self.shopgraph(cache=cache)
        if target is Target.BARE:
            return self.bare()
        if target is Target.BARE_REDIS:
            return self.bare_redis()
        if target in PEER_PACKAGES:
            return self.peer(target)
        raise ValueError(f"no server for {target}")

    def _start(self, server: procs.Server, env: dict[str, str]) -> procs.Server:
        self.running.append(server)
        server.start(env, ROOT)
        return server

    def stop(self, server: procs.Server) -> None:
        """Stop one server."""
        server.stop()
        if server in self.running:
            self.running.remove(server)

    def stop_all(self) -> None:
        """Stop every server still running."""
        for server in list(self.running):
            self.stop(server)


@contextlib.contextmanager
def serving(servers: Servers, start: Callable[[], procs.Server]) -> Iterator[procs.Server]:
    """A server for the length of a with-block."""
    server = start()
    try:
        yield server
    finally:
        servers.stop(server)
