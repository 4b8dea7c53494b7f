"""Every message of the HL7 v2 corpus (microsoft/FHIR-Converter's samples: ADT, ORU, OUL,
ORM, OML, OMG, RDE, RDS, MDM, REF, VXU, SIU, BAR, DFT, PPR; versions 2.3 to 2.8) converts to
a transaction Bundle that BayLink accepts as it is: POSTed to /fhir, the server validates
every resource and answers 200 with one successful entry per entry sent."""

from __future__ import annotations

from pathlib import Path

from fhir_exchange.convert.base import Source
from fhir_exchange.convert.hl7v2 import read
from tests.conftest import TEST_INSTITUTION, shared_path

# Messages BayLink does not convert, by design, with the reason. None today: every message
# type of the corpus is converted (see tables/events.json for the triggers).
UNSUPPORTED: dict[str, str] = {}
SOURCE = Source(TEST_INSTITUTION, None)


def corpus() -> list[Path]:
    return sorted(shared_path("corpora", "hl7v2-msconverter").glob("*.hl7"))


def test_the_corpus_is_what_this_test_expects() -> None:
    assert len(corpus()) == 139


def test_every_message_converts_and_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    # the referral Tasks of REF^I12 name the sending institution, which BayLink's registry holds
    response = client.put(f"/fhir/Organization/{TEST_INSTITUTION}",
                          json={"resourceType": "Organization", "id": TEST_INSTITUTION, "name": "Test Hospital"})
    assert response.status_code in (200, 201), response.text
    failures = []
    converted = 0
    for path in corpus():
        if path.name in UNSUPPORTED:
            continue
        for conversion in read(path.read_bytes(), SOURCE):
            converted += 1
            bundle = conversion.bundle
            assert bundle["type"] == "transaction" and bundle["entry"], path.name
            assert conversion.message_id and conversion.kind == "hl7v2", path.name
            result = client.post("/fhir", json=bundle)
            if result.status_code != 200:
                failures.append(f"{path.name}: {result.status_code} {result.text[:600]}")
                continue
            entries = result.json()["entry"]
            if len(entries) != len(bundle["entry"]) or any(e["response"]["status"][:1] != "2" for e in entries):
                failures.append(f"{path.name}: {[e['response']['status'] for e in entries]}")
    assert not failures, "\n".join(failures)
    assert converted == 139
