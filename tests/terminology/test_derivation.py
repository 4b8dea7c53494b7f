"""The Chinese script a concept lacks is derived with OpenCC (s2hk / hk2s), stored with how
it was made, and carried in the stored CodeSystem resource with the derived-by extension;
what the source gave is never overwritten."""

from __future__ import annotations

from sqlalchemy import text

from terminology.fhir import code_system_from_resource
from terminology.loader import read_code_system_csv
from tests.terminology.support import (
    CN_LAB,
    DERIVED_EXTENSION,
    HK_LAB,
    csv_source,
    load,
    load_starter,
    stored_resource,
    terminology_service,
    write_csv,
)

URL = "urn:test:cs:lab"
TABLE = (
    "code,display,en,zh-Hant,zh-Hans\n"
    "WBC,白细胞计数,White cell count,,白细胞计数\n"  # Simplified only
    "HB,Hb,Haemoglobin,血紅素,\n"  # Traditional only
    "TG,TG,Triglyceride,三酸甘油酯,甘油三酯\n"  # both, and not each other's conversion
    "K,K,Potassium,,\n"  # no Chinese at all
)


def _designation_rows(sessions) -> set[tuple[str, str, str, str | None]]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return {tuple(r) for r in session.execute(text(
            "SELECT c.code, d.language, d.value, d.derived_by FROM term_designation d "
            "JOIN term_concept c ON c.pk = d.concept_pk"
        )).all()}


def test_missing_script_is_derived_and_marked(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "lab.csv", TABLE)
    load(sessions, csv_source(path, url=URL, version="1"))
    assert _designation_rows(sessions) == {
        ("WBC", "en", "White cell count", None),
        ("WBC", "zh-Hans", "白细胞计数", None),
        ("WBC", "zh-Hant", "白細胞計數", "opencc:s2hk"),
        ("HB", "en", "Haemoglobin", None),
        ("HB", "zh-Hant", "血紅素", None),
        ("HB", "zh-Hans", "血红素", "opencc:hk2s"),
        # given both: kept as given (s2hk of 甘油三酯 is not 三酸甘油酯), nothing derived
        ("TG", "en", "Triglyceride", None),
        ("TG", "zh-Hant", "三酸甘油酯", None),
        ("TG", "zh-Hans", "甘油三酯", None),
        ("K", "en", "Potassium", None),
    }
    with terminology_service(sessions) as service:
        assert service.lookup(URL, "WBC", language="zh-Hant").display == "白細胞計數"
        assert service.lookup(URL, "HB", language="zh-Hans").display == "血红素"
        assert service.lookup(URL, "TG", language="zh-Hant").display == "三酸甘油酯"
        assert service.lookup(URL, "K", language="zh-Hant").display == "K"  # no Chinese: the system's display
        derived = {d.language: d.derived_by for d in service.lookup(URL, "WBC").designations}
        assert derived == {"en": None, "zh-Hans": None, "zh-Hant": "opencc:s2hk"}


def test_derived_designations_are_in_the_stored_code_system(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "lab.csv", TABLE)
    load(sessions, csv_source(path, url=URL, version="1"))
    resource = stored_resource(sessions, "CodeSystem", "lab")
    assert resource["url"] == URL and resource["version"] == "1" and resource["count"] == 4
    concepts = {c["code"]: c for c in resource["concept"]}

    def designations(code: str) -> dict[str, tuple[str, list]]:
        return {d["language"]: (d["value"], d.get("extension", [])) for d in concepts[code].get("designation", [])}

    assert designations("WBC")["zh-Hant"] == ("白細胞計數", [{"url": DERIVED_EXTENSION, "valueString": "opencc:s2hk"}])
    assert designations("WBC")["zh-Hans"] == ("白细胞计数", [])
    assert designations("HB")["zh-Hans"] == ("血红素", [{"url": DERIVED_EXTENSION, "valueString": "opencc:hk2s"}])
    assert designations("HB")["zh-Hant"] == ("血紅素", [])
    assert all(not ext for _, ext in designations("TG").values())
    assert set(designations("K")) == {"en"}


def test_reading_the_stored_resource_back_tells_derived_from_source(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "lab.csv", TABLE)
    source = csv_source(path, url=URL, version="1")
    load(sessions, source)
    again = code_system_from_resource(stored_resource(sessions, "CodeSystem", "lab"))
    records = {r.code: r for r in again.concepts}
    assert records["WBC"].designations == {"en": "White cell count", "zh-Hans": "白细胞计数"}
    assert records["WBC"].derived == {"zh-Hant": ("白細胞計數", "opencc:s2hk")}
    # the same content as the file said it: derived designations are not source content
    assert again.content_hash() == read_code_system_csv(source).content_hash()


def test_language_columns_are_stored_under_canonical_tags(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "lab.csv", "code,display,en-GB,zh-HK,zh-CN\nHB,Hb,Haemoglobin,血紅素,血红蛋白\n")
    load(sessions, csv_source(path, url=URL))
    assert _designation_rows(sessions) == {
        ("HB", "en", "Haemoglobin", None),
        ("HB", "zh-Hant", "血紅素", None),
        ("HB", "zh-Hans", "血红蛋白", None),
    }


def test_starter_files_get_the_other_script(sessions) -> None:
    load_starter(sessions, "cn-example-lab.csv", "hk-example-lab.csv")
    with terminology_service(sessions) as service:
        wbc = {d.language: (d.value, d.derived_by) for d in service.lookup(CN_LAB, "XC001").designations}
        assert wbc == {"zh-Hans": ("白细胞计数(WBC)", None), "zh-Hant": ("白細胞計數(WBC)", "opencc:s2hk")}
        hb = {d.language: (d.value, d.derived_by) for d in service.lookup(HK_LAB, "HB").designations}
        assert hb == {"en": ("Haemoglobin", None), "zh-Hant": ("血紅素", None), "zh-Hans": ("血红素", "opencc:hk2s")}


def test_derived_names_are_searchable(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "lab.csv", TABLE)
    load(sessions, csv_source(path, url=URL))
    with terminology_service(sessions) as service:
        # 細胞 appears only in the derived Traditional name of WBC
        found = service.expand(f"{URL}?fhir_vs", text_filter="細胞")
        assert [e.code for e in found.entries] == ["WBC"] and found.total == 1
        assert [e.code for e in service.expand(f"{URL}?fhir_vs", text_filter="血红素").entries] == ["HB"]
