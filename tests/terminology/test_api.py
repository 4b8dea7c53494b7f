"""The cached Python API other packages call: translate, display and normalise_unit, over
the starter content (loaded once for this module; these tests only read)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import terminology
import terminology.api
from fhir_exchange.store.db import make_sessionmaker
from terminology.api import Terminology, Unit
from tests.terminology.support import HK_LAB, ICD10, ICD10_CN, LOINC, UCUM, load_starter, starter, wipe

UNIT_SPELLING = "http://baylink.example.org/fhir/CodeSystem/unit-spelling"
ICD_MAP = starter("icd10-cn-to-who.csv").meta["url"]
LAB_MAP = starter("hk-example-lab-to-loinc.csv").meta["url"]


@pytest.fixture(scope="module")
def loaded(term_engine: Engine) -> sessionmaker[Session]:
    wipe(term_engine)
    sessions = make_sessionmaker(term_engine)
    load_starter(
        sessions,
        "icd10-who.csv", "icd10-cn-clinical.csv", "icd10-cn-to-who.csv",
        "loinc-common.csv", "hk-example-lab.csv", "hk-example-lab-to-loinc.csv",
        "ucum-common.csv", "unit-spellings.csv", "unit-spellings-to-ucum.csv",
    )
    return sessions


@pytest.fixture
def term(loaded: sessionmaker[Session]) -> Terminology:
    return Terminology(loaded, check_interval=0)


# --- translate -----------------------------------------------------------------------------------


def test_mainland_clinical_code_to_who_in_traditional_chinese(term: Terminology) -> None:
    [match] = term.translate(ICD10_CN, "E11.900", ICD10, language="zh-Hant")
    assert (match.system, match.code, match.equivalence, match.display, match.map_url) == (
        ICD10, "E11.9", "equivalent", "2型糖尿病不伴有併發症", ICD_MAP,
    )


def test_without_a_language_the_target_systems_display(term: Terminology) -> None:
    [match] = term.translate(ICD10_CN, "E11.900", ICD10)
    assert match.display == "Type 2 diabetes mellitus without complications"
    [match] = term.translate(ICD10_CN, "E11.900", ICD10, language="zh-Hans")
    assert match.display == "2型糖尿病不伴有并发症"


def test_an_ambiguous_source_returns_every_target_with_its_equivalence(term: Terminology) -> None:
    matches = term.translate(ICD10_CN, "E11.201", ICD10, language="zh-Hant")
    assert [(m.code, m.equivalence, m.display) for m in matches] == [
        ("E11.2", "wider", "2型糖尿病伴有腎的併發症"),
        ("N08.3", "wider", "糖尿病引起的腎小球疾患"),
    ]
    assert all(m.comment and "ambiguous" in m.comment for m in matches)
    dementia = term.translate(ICD10_CN, "F03.x01", ICD10)
    assert [(m.code, m.equivalence) for m in dementia] == [("F03", "wider"), ("F00.1", "narrower")]


def test_hong_kong_lab_code_to_loinc_in_simplified_chinese(term: Terminology) -> None:
    [match] = term.translate(HK_LAB, "HB", LOINC, language="zh-Hans")
    assert (match.system, match.code, match.equivalence, match.display, match.map_url) == (
        LOINC, "718-7", "equivalent", "血红蛋白（血液，质量浓度）", LAB_MAP,
    )
    assert match.comment == "reported in g/dL"
    glucose = term.translate(HK_LAB, "GLU", LOINC)
    assert [(m.code, m.equivalence) for m in glucose] == [("14749-6", "equivalent"), ("14771-0", "narrower")]


def test_nothing_to_translate_is_empty(term: Terminology) -> None:
    assert term.translate(ICD10_CN, "E11.900", LOINC) == ()  # no map to that system
    assert term.translate(ICD10_CN, "NOT-A-CODE", ICD10) == ()
    assert term.translate("urn:test:nowhere", "E11.900") == ()
    assert [m.code for m in term.translate(ICD10_CN, "E11.900")] == ["E11.9"]  # any target system


def test_module_functions_use_the_configured_terminology(loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminology.api, "_default", None)
    with pytest.raises(RuntimeError, match="terminology is not configured"):
        terminology.display(ICD10, "E11.9")
    configured = terminology.configure(loaded, check_interval=0)
    assert terminology.api.configured() is configured
    assert [m.code for m in terminology.translate(HK_LAB, "HB", LOINC)] == ["718-7"]
    assert terminology.display(ICD10, "E11.9", "zh-Hant") == "2型糖尿病不伴有併發症"
    assert terminology.normalise_unit("mmol/l") == Unit("mmol/L", UCUM, "mmol/L")


# --- display -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code", "language", "expected"),
    [
        (ICD10, "E11.9", None, "Type 2 diabetes mellitus without complications"),
        (ICD10, "E11.9", "en", "Type 2 diabetes mellitus without complications"),
        (ICD10, "E11.9", "zh-Hant", "2型糖尿病不伴有併發症"),
        (ICD10, "E11.9", "zh-Hans", "2型糖尿病不伴有并发症"),
        # a language the concept has no designation in: the code system's own display
        (ICD10, "E11.9", "pt", "Type 2 diabetes mellitus without complications"),
        # mainland system: display is Simplified; Traditional is derived; no English to fall back on
        (ICD10_CN, "E11.201", None, "2型糖尿病肾病"),
        (ICD10_CN, "E11.201", "zh-Hant", "2型糖尿病腎病"),
        (ICD10_CN, "E11.201", "en", "2型糖尿病肾病"),
        # Hong Kong lab: display is the lab's label; Simplified is derived
        (HK_LAB, "HB", None, "Hb"),
        (HK_LAB, "HB", "en", "Haemoglobin"),
        (HK_LAB, "HB", "zh-Hans", "血红素"),
        # no designations at all
        (UNIT_SPELLING, "毫摩尔/升", "zh-Hant", "毫摩尔/升"),
        # unknown code or system
        (ICD10, "E11.999", "en", None),
        ("urn:test:nowhere", "E11.9", None, None),
    ],
)
def test_display(term: Terminology, system: str, code: str, language: str | None, expected: str | None) -> None:
    assert term.display(system, code, language) == expected


# --- units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "ucum"),
    [
        ("mmol/l", "mmol/L"),
        ("MMOL/L", "mmol/L"),
        ("mmol/L", "mmol/L"),  # already UCUM
        ("  mmol/l ", "mmol/L"),
        ("umol/L", "umol/L"),
        ("µmol/L", "umol/L"),  # micro sign U+00B5
        ("μmol/L", "umol/L"),  # Greek mu U+03BC
        ("10^9/L", "10*9/L"),
        ("x10E9/L", "10*9/L"),
        ("g/dl", "g/dL"),
        ("毫摩尔/升", "mmol/L"),
        ("毫摩爾/升", "mmol/L"),
    ],
)
def test_normalise_unit(term: Terminology, spelling: str, ucum: str) -> None:
    assert term.normalise_unit(spelling) == Unit(ucum, UCUM, ucum)


@pytest.mark.parametrize("spelling", ["furlongs/fortnight", "", "   ", "mmol/dL"])
def test_unknown_unit_spellings_are_none(term: Terminology, spelling: str) -> None:
    assert term.normalise_unit(spelling) is None
