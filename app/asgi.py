"""The ASGI app for uvicorn workers: settings from the environment."""

from __future__ import annotations

from app.main import create_app
from app.platform.logging import configure_logging
from app.platform.runtime import tune_garbage_collector
from app.settings import Environment, load_settings

settings = load_settings()
configure_logging(level=settings.log_level, json_lines=settings.env is Environment.PRODUCTION)
app = create_app(settings)
tune_garbage_collector()
