"""Splitting a parameter value on unescaped separators (search.html#escaping): the fast path
for values with no backslash gives what the escape-aware walk gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_exchange.search.params import _split_escaped


def _walk(raw: str, sep: str, unescape: bool) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw):
            current.append(raw[i + 1] if unescape else raw[i : i + 2])
            i += 2
            continue
        if raw[i] == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(raw[i])
        i += 1
    parts.append("".join(current))
    return parts


@given(st.text(alphabet="ab,|$\\ ", max_size=12), st.sampled_from(",|$"), st.booleans())
def test_split_escaped_is_the_escape_aware_walk(raw: str, sep: str, unescape: bool) -> None:
    assert _split_escaped(raw, sep, unescape=unescape) == _walk(raw, sep, unescape)


def test_examples() -> None:
    assert _split_escaped("a,b\\,c", ",", unescape=False) == ["a", "b\\,c"]
    assert _split_escaped("http://x|A\\|1", "|") == ["http://x", "A|1"]
    assert _split_escaped("", ",") == [""]
    assert _split_escaped("a,,b", ",") == ["a", "", "b"]
