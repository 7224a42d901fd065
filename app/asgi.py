"""The ASGI app and HTTP protocol for uvicorn workers: settings from the environment."""

from __future__ import annotations

import sys

from app.engine.compat import IncompatibleDependency
from app.http.server_protocol import server_protocol
from app.main import create_app
from app.platform.logging import configure_logging
from app.platform.runtime import tune_garbage_collector
from app.settings import Environment, SettingsError, load_settings

try:
    settings = load_settings()
    # `serve` passes `--http app.asgi:http_protocol`: the worker's protocol, same settings.
    http_protocol = server_protocol(settings)
except (SettingsError, IncompatibleDependency) as error:
    # Run by uvicorn directly (not through `shopgraph serve`): one line, not a traceback.
    sys.stderr.write(f"error: {error}\n")
    raise SystemExit(2) from None
configure_logging(level=settings.log_level, json_lines=settings.env is Environment.PRODUCTION)
app = create_app(settings)
tune_garbage_collector()
