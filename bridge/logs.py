"""Structured logging with structlog; every line passes through secret redaction.

Standard-library loggers (aiohttp, apscheduler, the SDKs) are routed through
the same processors, so a token can't slip out through a library's message.
A call below the configured level returns before any processor runs, so
``log.debug`` on a hot path costs one level check when debug is off.
Datetimes are written as RFC3339 strings.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from datetime import date, datetime
from typing import Any

import structlog

from bridge.events import rfc3339

REDACTED = "[redacted]"
_SECRET_KEYS = re.compile(r"(token|secret|password|api_key|apikey|authorization|signature)", re.IGNORECASE)
# Shapes of credentials worth catching even when nobody registered them.
_SECRET_SHAPES = re.compile(r"(xox[abprs]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|whsec_[A-Za-z0-9+/=]+|Bearer\s+\S+)")


class Redactor:
    """Replaces known secret values and credential-shaped strings in log events."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def register(self, secrets: Iterable[str | None]) -> None:
        self._secrets.update(s for s in secrets if s and len(s) >= 4)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _SECRET_SHAPES.sub(REDACTED, text)

    def _clean(self, key: str, value: Any) -> Any:
        if _SECRET_KEYS.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        if isinstance(value, datetime):
            return rfc3339(value)
        if isinstance(value, date):
            return value.isoformat()
        return value

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = self._clean(key, event_dict[key])
        return event_dict


redactor = Redactor()


def _scrub_rendered(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Tracebacks are rendered late; scrub them once they are text.
    if isinstance(event_dict.get("exception"), str):
        event_dict["exception"] = redactor.scrub(event_dict["exception"])
    return event_dict


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class LevelFilteringLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger that asks the standard-library logger for its level
    before building the event, so a disabled line runs no processor at all.

    The level stays the standard library's (set by ``configure``), so it can change
    at run time and cached loggers follow it.
    """

    def _proxy_to_logger(self, method_name: str, event: str | None = None, *event_args: Any, **event_kw: Any) -> Any:
        if not self._logger.isEnabledFor(_LEVELS.get(method_name, logging.CRITICAL)):
            return None
        return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        # The hot one: checked here, before even the arguments are passed on.
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return super()._proxy_to_logger("debug", event, *args, **kw)


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor,
    ]


def _configure_structlog() -> None:
    # Done at import, so a module-level logger first used before ``configure`` is
    # already the filtering stdlib one and can be cached for good.
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=LevelFilteringLogger,
        cache_logger_on_first_use=True,
    )


def configure(log_format: str | None = None, level: str = "info", stream: Any = None) -> None:
    stream = stream or sys.stderr
    if log_format is None:
        log_format = "console" if stream.isatty() else "json"
    shared = _shared_processors()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # Tracebacks become text before rendering in both formats, so they can be scrubbed too.
    final: list[Any] = [structlog.processors.format_exc_info, _scrub_rendered]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "apscheduler",
        "aiohttp.access",
        "aiosqlite",
        "asyncio",
        "httpx",
        "httpcore",
        "oz_agent_sdk",
        "slack_sdk",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # A tick skipped because the previous poll still runs is the design, not a problem.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    _configure_structlog()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)  # type: ignore[no-any-return]


_configure_structlog()
