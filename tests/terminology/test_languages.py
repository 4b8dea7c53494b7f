"""Request language tags onto the three display languages, and choosing one from
displayLanguage / Accept-Language."""

from __future__ import annotations

import pytest

from terminology.languages import canonical_language, preferred_language


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        # Traditional Chinese: by script subtag, or by a region that writes Traditional
        ("zh-HK", "zh-Hant"),
        ("zh-hant-hk", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("zh-TW", "zh-Hant"),
        ("zh-MO", "zh-Hant"),
        ("zh_HK", "zh-Hant"),
        ("ZH-HK", "zh-Hant"),
        ("yue", "zh-Hant"),
        ("zh-Hant-CN", "zh-Hant"),  # the script subtag wins over the region
        # Simplified Chinese: script subtag, mainland / Singapore regions, or no region at all
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-Hans", "zh-Hans"),
        ("zh-Hans-HK", "zh-Hans"),
        ("cmn", "zh-Hans"),
        # everything else keeps its primary language subtag, lower-cased
        ("en-GB", "en"),
        ("en", "en"),
        ("EN-us", "en"),
        ("pt-MO", "pt"),
        (" en-GB ", "en"),
        ("", ""),
    ],
)
def test_canonical_language(tag: str, expected: str) -> None:
    assert canonical_language(tag) == expected


def test_display_language_wins_over_accept_language() -> None:
    assert preferred_language("zh-HK", "en;q=1.0") == "zh-Hant"
    assert preferred_language("zh-CN", None) == "zh-Hans"
    assert preferred_language("en-GB", "zh-HK") == "en"


def test_neither_given_means_no_preference() -> None:
    assert preferred_language(None, None) is None
    assert preferred_language("", "") is None
    assert preferred_language(None, "*") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-HK", "zh-Hant"),
        ("en-GB,en;q=0.9", "en"),
        # highest q-value wins wherever it stands in the header
        ("en;q=0.5, zh-HK;q=0.9", "zh-Hant"),
        ("zh-CN;q=0.3, en;q=0.4, zh-TW;q=0.8", "zh-Hant"),
        ("zh-HK;q=0.5,zh-CN", "zh-Hans"),  # no q means 1
        # ties go to the earlier entry
        ("zh-CN;q=0.8, zh-HK;q=0.8", "zh-Hans"),
        ("zh-HK;q=0.8, zh-CN;q=0.8", "zh-Hant"),
        # q=0 means "not acceptable"; a malformed q is treated as 0; * is no language
        ("zh-HK;q=0, en;q=0.1", "en"),
        ("zh-HK;q=abc, en;q=0.2", "en"),
        ("*, pt-MO;q=0.5", "pt"),
        ("  zh-hant-mo ; q=0.7 ,  en ; q=0.6 ", "zh-Hant"),
        ("zh-HK;q=0", None),
    ],
)
def test_accept_language(header: str, expected: str | None) -> None:
    assert preferred_language(None, header) == expected
