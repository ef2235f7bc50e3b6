"""Reading fields of untrusted JSON, each checked for its type and shape.

Everything Slack sends (signed or not) is read only through these helpers, so a
list where a string belongs, an over-long id or a lone surrogate in a text
becomes one clear ``Unusable`` reason here, at the edge, instead of an
exception somewhere downstream. ``None`` means "absent" (missing, ``null`` or
empty); a value of the wrong type is never silently taken as absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_ID = re.compile(r"^[\x21-\x7e]{1,96}$")  # printable ASCII, no spaces: Slack's ids and trigger ids
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")  # a message timestamp: seconds.micros
_UNSAFE_TEXT = re.compile(r"[\ud800-\udfff\x00]")  # what JSON columns and PostgreSQL text refuse
URL_LIMIT = 3000
VALUE_LIMIT = 2000  # Block Kit's limit for a button value


class Unusable(ValueError):
    """A field the bridge reads is not what Slack sends; the reason names the field."""


def _describe(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _raw(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Unusable(f"{where}{key} is {_describe(value)}, not a string")
    return value


def text(data: Mapping[str, Any], key: str, where: str = "", *, limit: int | None = None) -> str | None:
    """Free text (a message), with what no database can store replaced by U+FFFD."""
    value = _raw(data, key, where)
    if value is None:
        return None
    if limit is not None and len(value) > limit:
        raise Unusable(f"{where}{key} is longer than {limit} characters")
    return _UNSAFE_TEXT.sub("\ufffd", value)


def ident(data: Mapping[str, Any], key: str, where: str = "") -> str | None:
    """An id (channel, user, event, trigger, action): short printable ASCII."""
    value = _raw(data, key, where)
    if value is not None and not _ID.match(value):
        raise Unusable(f"{where}{key} is not a Slack id")
    return value


def timestamp(data: Mapping[str, Any], key: str, where: str = "") -> str | None:
    """A message ``ts`` such as ``1712345678.000100``."""
    value = _raw(data, key, where)
    if value is not None and not _TS.match(value):
        raise Unusable(f"{where}{key} is not a Slack message timestamp")
    return value


def obj(data: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Unusable(f"{where}{key} is {_describe(value)}, not an object")
    return value


def objects(data: Mapping[str, Any], key: str, where: str = "") -> list[Mapping[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Unusable(f"{where}{key} is not a list of objects")
    return value


def present(data: Mapping[str, Any], key: str) -> bool:
    """Whether a marker field is there at all (``bot_profile``: its content does not matter)."""
    return data.get(key) not in (None, "", False)
