"""JSON-lines logging with a request id, and redaction of anything that looks like a secret."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Field names whose values are never written out, whatever logs them.
_SECRET_KEYS = re.compile(
    r"(authorization|password|secret|token|cookie|api[_-]?key|private[_-]?key)", re.IGNORECASE
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# A personal API key anywhere in the text, as a secret scanner finds one (`tdk_` + base62).
_API_KEY = re.compile(r"\btdk_[0-9A-Za-z]{20,}")
_TOKEN_IN_URL = re.compile(r"(?i)([?&](?:token|refresh_token|access_token|code)=)[^&\s\"']+")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b((?:client_)?(?:password|passwd|secret|token|refresh_token|access_token)\s*[=:]\s*)"
    r"[^\s&,;\"']+"
)
REDACTED = "[redacted]"

_STANDARD_RECORD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's terminal markup of the same message
}


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


_default_record_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    # Stamped when the record is made, so handlers that format later still see the right id.
    record = _default_record_factory(*args, **kwargs)
    record.request_id = current_request_id()
    return record


if getattr(logging.getLogRecordFactory(), "__name__", "") != _record_with_request_id.__name__:
    logging.setLogRecordFactory(_record_with_request_id)


def redact_text(text: str) -> str:
    # Each pattern needs a word or a character that most log text (a path, a route) lacks: the
    # cheap `in` tests spare every access-log line the regular expressions.
    folded = text.casefold()
    if "bearer" in folded or "basic" in folded:
        text = _BEARER.sub(rf"\1 {REDACTED}", text)
    if "tdk_" in text:
        text = _API_KEY.sub(REDACTED, text)
    if "=" in text or ":" in text:
        text = _TOKEN_IN_URL.sub(rf"\1{REDACTED}", text)
        text = _SECRET_ASSIGNMENT.sub(rf"\1{REDACTED}", text)
    return text


@lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEYS.search(key) is not None


def redact(value: Any, key: str | None = None) -> Any:
    if key is not None and _is_secret_key(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which worker, when several serve
            "message": redact_text(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if (
                key not in _STANDARD_RECORD_FIELDS
                and key != "request_id"
                and not key.startswith("_")
            ):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log has no request id and may carry query strings; ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs each request's URL at INFO: the webhook URLs tenants register may carry a
    # token of theirs in the query. The delivery log records every attempt instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
