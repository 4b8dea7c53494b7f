"""The reader's tables, as data: v2 values to FHIR (``common.json``), the messages and
triggers it converts (``events.json``), and one small file per local flavour (``hk.json``,
``cn.json``, ``mo.json``). Each file says where its values come from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).parent


def load(name: str) -> dict[str, Any]:
    return orjson.loads((HERE / f"{name}.json").read_bytes())


COMMON: dict[str, Any] = load("common")
EVENTS: dict[str, Any] = load("events")
PROFILE_NAMES = ("hk", "cn", "mo")
