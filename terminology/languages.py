"""Display languages: the three BayLink works in (``en``, ``zh-Hant`` as used in Hong Kong,
``zh-Hans``), how request language tags map onto them, and deriving the missing Chinese
script with OpenCC's Hong Kong configurations (``s2hk`` / ``hk2s``)."""

from __future__ import annotations

from functools import cache

import opencc

EN, ZH_HANT, ZH_HANS = "en", "zh-Hant", "zh-Hans"
SUPPORTED = (EN, ZH_HANT, ZH_HANS)
# Regions whose written Chinese is Traditional (BCP 47 tags without a script subtag).
_TRADITIONAL_REGIONS = {"hk", "mo", "tw"}
# How a derived designation was made, recorded with it.
DERIVED_S2HK = "opencc:s2hk"
DERIVED_HK2S = "opencc:hk2s"


@cache
def canonical_language(tag: str) -> str:
    """A BCP 47 tag as BayLink stores it: ``zh-HK`` / ``zh-hant-hk`` -> ``zh-Hant``,
    ``zh-CN`` / ``zh`` -> ``zh-Hans``, ``en-GB`` -> ``en``; anything else keeps its primary
    language subtag lower-cased (``pt-MO`` -> ``pt``)."""
    parts = [p for p in tag.strip().replace("_", "-").lower().split("-") if p]
    if not parts:
        return ""
    primary = parts[0]
    if primary == "zh" or primary in ("yue", "cmn"):
        if "hant" in parts[1:]:
            return ZH_HANT
        if "hans" in parts[1:]:
            return ZH_HANS
        if any(p in _TRADITIONAL_REGIONS for p in parts[1:]) or primary == "yue":
            return ZH_HANT
        return ZH_HANS
    return primary


def preferred_language(display_language: str | None, accept_language: str | None) -> str | None:
    """The language to display in: ``displayLanguage`` if given, else the best entry of an
    ``Accept-Language`` header (by q-value, ties in header order); None when neither says."""
    if display_language:
        return canonical_language(display_language)
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, canonical_language(tag)))
    return min(ranked)[2] if ranked else None


@cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_traditional_hk(text: str) -> str:
    return _converter("s2hk").convert(text)


def to_simplified(text: str) -> str:
    return _converter("hk2s").convert(text)


def has_han(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)
