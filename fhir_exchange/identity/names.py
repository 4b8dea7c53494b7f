"""The forms a Chinese name takes on each side of the boundary, reduced to keys that compare:

- characters: Traditional and Simplified alike (OpenCC ``hk2s``), e.g. 陳大文 = 陈大文;
- Mandarin: Hanyu Pinyin of the characters (pypinyin), and a Latin name read as pinyin,
  e.g. 陈大文 = "Chen Dawen";
- Cantonese: Jyutping of the characters (ToJyutping) and a Latin name as Hong Kong or Macao
  write it ("CHAN Tai Man", Macao's "Cheong", "Leong", "Lei"), both reduced to a coarse
  phonetic key, because Hong Kong government romanisation, Macao's Portuguese-influenced
  spelling and Jyutping spell the same sounds differently (ch/ts/z, oo/u, ee/i, eu/oe/eo).

The coarse key is an approximation made for matching, not a romanisation: it is what two
spellings of the same syllable have in common.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import ToJyutping
from pypinyin import lazy_pinyin

from terminology.languages import has_han, to_simplified

# Applied in order to a lower-case romanised syllable (Jyutping without its tone, or a
# Hong Kong / Macao spelling); both sides reduce to the same key.
_COARSE_RULES = (
    ("jy", "y"), ("tsz", "ci"), ("sze", "si"), ("ts", "c"), ("ch", "c"), ("sh", "s"), ("z", "c"), ("j", "y"),
    # Jyutping eo+i/n/t is Hong Kong's ui/un/ut; Jyutping oe, Hong Kong eu and Macao eo before ng agree
    ("eong", "eng"), ("oeng", "eng"), ("eung", "eng"), ("eoi", "ui"), ("eon", "un"), ("eot", "ut"),
    ("ow", "au"), ("oo", "u"), ("ee", "i"), ("aa", "a"), ("eu", "e"), ("oe", "e"), ("eo", "e"),
    ("ue", "u"), ("yu", "u"), ("ou", "o"), ("ei", "i"),
    ("d", "t"), ("b", "p"), ("g", "k"),
)
_LATIN_WORD = re.compile(r"[a-z]+")


def _fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(ch))


@lru_cache(maxsize=65536)
def coarse(syllable: str) -> str:
    text = re.sub(r"[^a-z]", "", _fold(syllable))
    for old, new in _COARSE_RULES:
        text = text.replace(old, new)
    return re.sub(r"(.)\1+", r"\1", text)


@lru_cache(maxsize=65536)
def _han_keys(han: str) -> tuple[str, str, str]:
    simplified = to_simplified(han)
    mandarin = "".join(lazy_pinyin(simplified))
    cantonese = "".join(coarse(jp or "") for _, jp in ToJyutping.get_jyutping_list(han))
    return simplified, mandarin, cantonese


def name_keys(family: str, given: str) -> set[tuple[str, str]]:
    """Keys of one name (family name first, as the patient's own records order it)."""
    text = f"{family}{given}".replace(" ", "")
    if not text:
        return set()
    if has_han(text):
        simplified, mandarin, cantonese = _han_keys(text)
        return {("han", simplified), ("py", mandarin), ("yue", cantonese)}
    words = _LATIN_WORD.findall(_fold(f"{family} {given}"))
    if not words:
        return set()
    return {("py", "".join(words)), ("yue", "".join(coarse(w) for w in words))}


def patient_name_keys(patient: dict[str, Any]) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    for name in patient.get("name") or []:
        family = name.get("family") or ""
        given = " ".join(name.get("given") or [])
        if family or given:
            keys |= name_keys(family, given)
        elif name.get("text"):
            text = name["text"]
            if has_han(text):
                keys |= name_keys(text, "")
            else:
                parts = text.split()
                # "CHAN Tai Man": an upper-case first word is the family name
                family, rest = (parts[0], parts[1:]) if parts and parts[0].isupper() else (parts[-1], parts[:-1])
                keys |= name_keys(family, " ".join(rest))
    return keys


def family_keys(patient: dict[str, Any]) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    for name in patient.get("name") or []:
        if name.get("family"):
            keys |= name_keys(name["family"], "")
    return keys
