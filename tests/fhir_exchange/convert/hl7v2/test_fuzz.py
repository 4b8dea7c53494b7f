"""Fuzzing the reader: random bytes and mutated real messages either convert — to Bundles
whose every resource passes the server's own validation — or are refused with a
ConversionError. No other exception, whatever the input."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_exchange.convert.base import ConversionError, Source
from fhir_exchange.convert.hl7v2 import read
from fhir_exchange.validation import validate_resource
from terminology import api
from tests.conftest import SHARED

FIXTURES = Path(__file__).with_name("fixtures")
CORPUS = SHARED / "corpora" / "hl7v2-msconverter"
SEEDS = sorted(FIXTURES.glob("*.hl7")) + sorted(CORPUS.glob("*.hl7"))[::4]  # the fixtures and a spread of the corpus
MESSAGES = [p.read_bytes() for p in SEEDS]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DELIMITERS = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b'""', b"\x0b", b"\x1c"]


@contextmanager
def without_terminology():  # type: ignore[no-untyped-def]
    """Conversions here are pure: no terminology database behind them."""
    with mock.patch.object(api, "_default", None):
        yield


def check(data: bytes, profile: str | None = None) -> None:
    try:
        conversions = read(data, Source("fuzz-hospital", profile))
    except ConversionError as error:
        assert error.code in ("AE", "AR") and error.hl7_error.isdigit() and error.message
        return
    for conversion in conversions:
        bundle: dict[str, Any] = conversion.bundle
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        orjson.dumps(bundle)
        for entry in bundle["entry"]:
            assert entry["fullUrl"].startswith("urn:uuid:")
            validate_resource(entry["resource"], entry["resource"]["resourceType"])


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["hk", "cn", None]))
def test_random_bytes(data: bytes, profile: str | None) -> None:
    with without_terminology():
        check(data, profile)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_after_a_valid_header(tail: bytes) -> None:
    with without_terminology():
        check(b"MSH|^~\\&|HIS|HOSP|||20260301||ORU^R01|1|P|2.5.1\rPID|1||M1^^^H^MR\r" + tail)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(MESSAGES)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["delete", "insert", "delimiter", "truncate", "duplicate", "swap"]))
        if action == "delete":
            del data[position:position + draw(st.integers(1, 20))]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=12))
        elif action == "delimiter":
            data[position:position + 1] = draw(st.sampled_from(DELIMITERS))
        elif action == "truncate":
            del data[position:]
        else:
            segments = bytes(data).replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
            i, j = draw(st.integers(0, len(segments) - 1)), draw(st.integers(0, len(segments) - 1))
            if action == "duplicate":
                segments.insert(j, segments[i])
            else:
                segments[i], segments[j] = segments[j], segments[i]
            data = bytearray(b"\r".join(segments))
    return bytes(data)


@FUZZ
@given(mutated(), st.sampled_from(["hk", "cn", None]))
def test_mutated_real_messages(data: bytes, profile: str | None) -> None:
    with without_terminology():
        check(data, profile)


def test_every_seed_converts_unmutated() -> None:
    with without_terminology():
        for data in MESSAGES:
            assert read(data, Source("fuzz-hospital", None))
