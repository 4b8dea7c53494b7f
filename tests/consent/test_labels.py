"""Sensitivity labels follow the terminology: what a code means is kept per terminology
generation, and forgotten when the terminology changes (any load or delete)."""

from __future__ import annotations

import pytest

from consent import labels as labels_module
from consent.labels import SensitivityLabeller
from fhir_exchange.store.db import make_sessionmaker
from tests.terminology.support import load_starter

ICD10 = "http://hl7.org/fhir/sid/icd-10"


def test_labels_follow_a_terminology_change(app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(labels_module, "CHECK_EVERY", 0.0)  # look at the generation on every use
    sessions = make_sessionmaker(app.state.engine)
    load_starter(sessions, "icd10-who.csv")
    labeller = SensitivityLabeller(sessions)
    hiv = {"resourceType": "Condition", "code": {"coding": [{"system": ICD10, "code": "B20"}]}}
    seen: dict[tuple[str, str], frozenset[str]] = {}
    assert labeller.labels(hiv, seen) == frozenset()  # no value set of sensitive diagnoses yet
    assert labeller.labels(hiv) == frozenset()  # and the meaning is kept: asked again, the same
    load_starter(sessions, "valueset-sensitive-diagnoses.json")
    assert labeller.labels(hiv) == frozenset({"HIV"})  # the terminology moved: looked up afresh
    assert labeller.labels_of(frozenset({"PSY"}), ((ICD10, "B20"),)) == frozenset({"HIV", "PSY"})
    assert seen[(ICD10, "B20")] == frozenset()  # a request's own lookups stay that request's
