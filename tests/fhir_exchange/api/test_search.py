"""Search behaviour per parameter type and modifier (search.html of R4), on both backends."""

from __future__ import annotations

import threading

import pytest


def ids(client, url: str, **params: object) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match")


def put(client, resource: dict) -> dict:  # type: ignore[no-untyped-def]
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
def people(client) -> None:  # type: ignore[no-untyped-def]
    put(client, {"resourceType": "Patient", "id": "chan", "active": True, "gender": "male",
                 "name": [{"family": "Chan", "given": ["Tai Man"]}, {"text": "陳大文"}],
                 "birthDate": "1950-03-04",
                 "identifier": [{"system": "urn:hkid", "value": "A1234563",
                                 "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                      "code": "NNHKG"}]}}],
                 "telecom": [{"system": "phone", "value": "+852 2345 6789"}],
                 "address": [{"city": "Zhongshan", "country": "CN"}]})
    put(client, {"resourceType": "Patient", "id": "muller", "gender": "female",
                 "name": [{"family": "Müller", "given": ["Zoë"]}], "birthDate": "1950-11",
                 "identifier": [{"system": "urn:mrn", "value": "A1234563"}],
                 "meta": {"tag": [{"system": "urn:baylink:test", "code": "demo"}],
                          "profile": ["http://example.org/StructureDefinition/p"]}})
    put(client, {"resourceType": "Patient", "id": "nobody", "birthDate": "1980-01-01",
                 "identifier": [{"value": "A1234563"}]})


@pytest.mark.usefixtures("people")
class TestStringAndToken:
    def test_string_prefix_case_and_accent_insensitive(self, client) -> None:
        assert ids(client, "/fhir/Patient", family="cha") == ["chan"]
        assert ids(client, "/fhir/Patient", family="MULLER") == ["muller"]
        assert ids(client, "/fhir/Patient", name="zoe") == ["muller"]
        assert ids(client, "/fhir/Patient", name="陳") == ["chan"]

    def test_string_exact_and_contains(self, client) -> None:
        assert ids(client, "/fhir/Patient", **{"family:exact": "Müller"}) == ["muller"]
        assert ids(client, "/fhir/Patient", **{"family:exact": "muller"}) == []
        assert ids(client, "/fhir/Patient", **{"family:contains": "ll"}) == ["muller"]
        assert ids(client, "/fhir/Patient", **{"address-city:contains": "SHAN"}) == ["chan"]

    def test_token_forms(self, client) -> None:
        assert ids(client, "/fhir/Patient", identifier="A1234563") == ["chan", "muller", "nobody"]
        assert ids(client, "/fhir/Patient", identifier="urn:hkid|A1234563") == ["chan"]
        assert ids(client, "/fhir/Patient", identifier="|A1234563") == ["nobody"]
        assert ids(client, "/fhir/Patient", identifier="urn:mrn|") == ["muller"]
        assert ids(client, "/fhir/Patient", gender="male") == ["chan"]
        assert ids(client, "/fhir/Patient", active="true") == ["chan"]

    def test_token_modifiers(self, client) -> None:
        assert ids(client, "/fhir/Patient", **{"gender:not": "male"}) == ["muller", "nobody"]
        assert ids(client, "/fhir/Patient", **{
            "identifier:of-type": "http://terminology.hl7.org/CodeSystem/v2-0203|NNHKG|A1234563"}) == ["chan"]
        assert ids(client, "/fhir/Patient", **{"gender:missing": "true"}) == ["nobody"]
        assert ids(client, "/fhir/Patient", **{"gender:missing": "false"}) == ["chan", "muller"]

    def test_or_and_and(self, client) -> None:
        assert ids(client, "/fhir/Patient", gender="male,female") == ["chan", "muller"]
        both = client.get("/fhir/Patient?identifier=A1234563&gender=female").json()
        assert [e["resource"]["id"] for e in both["entry"]] == ["muller"]

    def test_meta_parameters(self, client) -> None:
        assert ids(client, "/fhir/Patient", _tag="urn:baylink:test|demo") == ["muller"]
        assert ids(client, "/fhir/Patient", _profile="http://example.org/StructureDefinition/p") == ["muller"]
        assert ids(client, "/fhir/Patient", _id="chan,nobody") == ["chan", "nobody"]

    def test_token_text(self, client) -> None:
        put(client, {"resourceType": "Condition", "id": "dm", "subject": {"reference": "Patient/chan"},
                     "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11",
                                          "display": "Type 2 diabetes mellitus"}], "text": "糖尿病"}})
        assert ids(client, "/fhir/Condition", **{"code:text": "type 2"}) == ["dm"]
        assert ids(client, "/fhir/Condition", **{"code:text": "糖尿"}) == ["dm"]


@pytest.mark.usefixtures("people")
class TestDates:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("1950", ["chan", "muller"]),
            ("1950-03", ["chan"]),
            ("1950-03-04", ["chan"]),
            ("eq1950-11", ["muller"]),
            ("ne1950", ["nobody"]),
            ("gt1950-06", ["muller", "nobody"]),
            ("lt1950-06", ["chan"]),
            ("ge1950-11-15", ["muller", "nobody"]),  # 1950-11 reaches past the 15th
            ("ge1950-11-30", ["nobody"]),  # ...but not past the 30th: its range ends there
            ("le1950-03-04", ["chan"]),
            ("sa1950-03-04", ["muller", "nobody"]),
            ("eb1950-11-01", ["chan"]),
            ("1980-01-01", ["nobody"]),
        ],
    )
    def test_prefixes_and_precision(self, client, query: str, expected: list[str]) -> None:
        assert ids(client, "/fhir/Patient", birthdate=query) == expected

    def test_range_with_two_parameters(self, client) -> None:
        response = client.get("/fhir/Patient?birthdate=ge1950-01-01&birthdate=lt1951-01-01")
        assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == ["chan", "muller"]

    def test_period_and_last_updated(self, client) -> None:
        put(client, {"resourceType": "Encounter", "id": "stay", "status": "finished",
                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                     "period": {"start": "2024-05-01T08:00:00Z", "end": "2024-05-03T12:00:00Z"}})
        put(client, {"resourceType": "Encounter", "id": "open", "status": "in-progress",
                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                     "period": {"start": "2024-05-02"}})
        assert ids(client, "/fhir/Encounter", date="2024-05") == ["stay"]
        assert ids(client, "/fhir/Encounter", date="gt2024-05-02") == ["open", "stay"]
        assert ids(client, "/fhir/Encounter", date="eb2024-05-02") == []
        assert ids(client, "/fhir/Encounter", date="sa2024-04-30") == ["open", "stay"]
        put(client, {"resourceType": "Observation", "id": "tz", "status": "final", "code": {"text": "x"},
                     "effectiveDateTime": "1980-01-01T10:00:00+08:00"})
        assert ids(client, "/fhir/Observation", date="1980-01-01") == ["tz"]  # 02:00Z, still that day
        assert ids(client, "/fhir/Observation", date="1980-01-01T02:00:00Z") == ["tz"]
        assert ids(client, "/fhir/Observation", date="1980-01-01T10:00:00+08:00") == ["tz"]
        assert ids(client, "/fhir/Observation", date="1980-01-01T01:00:00Z") == []
        assert ids(client, "/fhir/Patient", _lastUpdated="gt2000-01-01") == ["chan", "muller", "nobody"]
        assert ids(client, "/fhir/Patient", _lastUpdated="lt2000-01-01") == []

    def test_bad_date_is_a_400_naming_the_parameter(self, client) -> None:
        response = client.get("/fhir/Patient", params={"birthdate": "1950-13"})
        assert response.status_code == 400
        assert "birthdate" in response.json()["issue"][0]["diagnostics"]


@pytest.fixture
def observations(client) -> None:  # type: ignore[no-untyped-def]
    put(client, {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:mrn", "value": "1"}],
                 "name": [{"family": "Ho"}], "managingOrganization": {"reference": "Organization/qmh"}})
    put(client, {"resourceType": "Patient", "id": "p2", "identifier": [{"system": "urn:mrn", "value": "2"}],
                 "name": [{"family": "Ip"}]})
    put(client, {"resourceType": "Organization", "id": "qmh", "name": "Queen Mary Hospital"})
    values = {"o1": ("p1", 5.4, "%"), "o2": ("p1", 100, "mg/dL"), "o3": ("p2", 100.4, "mg/dL"), "o4": ("p2", 7, "%")}
    for oid, (pid, value, unit) in values.items():
        put(client, {"resourceType": "Observation", "id": oid, "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7" if unit == "mg/dL" else "4548-4"}]},
                     "subject": {"reference": f"Patient/{pid}"},
                     "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    put(client, {"resourceType": "RiskAssessment", "id": "r1", "status": "final",
                 "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 0.25}]})


@pytest.mark.usefixtures("observations")
class TestQuantityNumberReference:
    def test_quantity(self, client) -> None:
        assert ids(client, "/fhir/Observation", **{"value-quantity": "100"}) == ["o2", "o3"]  # [99.5, 100.5)
        assert ids(client, "/fhir/Observation", **{"value-quantity": "100.0"}) == ["o2"]  # [99.95, 100.05)
        assert ids(client, "/fhir/Observation", **{"value-quantity": "gt7"}) == ["o2", "o3"]
        assert ids(client, "/fhir/Observation", **{"value-quantity": "ge7"}) == ["o2", "o3", "o4"]
        assert ids(client, "/fhir/Observation", **{"value-quantity": "lt10|http://unitsofmeasure.org|%"}) == ["o1", "o4"]
        assert ids(client, "/fhir/Observation", **{"value-quantity": "100||mg/dL"}) == ["o2", "o3"]
        assert ids(client, "/fhir/Observation", **{"value-quantity": "ap100"}) == ["o2", "o3"]
        assert ids(client, "/fhir/Observation", **{"value-quantity": "ne100"}) == ["o1", "o4"]

    def test_number(self, client) -> None:
        assert ids(client, "/fhir/RiskAssessment", probability="0.25") == ["r1"]
        assert ids(client, "/fhir/RiskAssessment", probability="gt0.3") == []
        assert ids(client, "/fhir/RiskAssessment", probability="le0.3") == ["r1"]

    def test_reference_forms(self, client) -> None:
        assert ids(client, "/fhir/Observation", subject="Patient/p1") == ["o1", "o2"]
        assert ids(client, "/fhir/Observation", subject="p1") == ["o1", "o2"]
        assert ids(client, "/fhir/Observation", **{"subject:Patient": "p2"}) == ["o3", "o4"]
        assert ids(client, "/fhir/Observation", patient="Patient/p2") == ["o3", "o4"]
        absolute = "http://testserver/fhir/Patient/p1"
        assert ids(client, "/fhir/Observation", subject=absolute) == ["o1", "o2"]

    def test_chaining_and_reverse_chaining(self, client) -> None:
        assert ids(client, "/fhir/Observation", **{"subject:Patient.identifier": "urn:mrn|2"}) == ["o3", "o4"]
        assert ids(client, "/fhir/Observation", **{"subject.name": "ho"}) == ["o1", "o2"]
        assert ids(client, "/fhir/Observation", **{"patient.organization.name": "queen"}) == ["o1", "o2"]
        assert ids(client, "/fhir/Patient", **{"_has:Observation:patient:code": "2345-7"}) == ["p1", "p2"]
        assert ids(client, "/fhir/Patient", **{"_has:Observation:subject:value-quantity": "lt6"}) == ["p1"]
        # the chained criterion applies to the target, not to the resource searched
        assert ids(client, "/fhir/Observation", **{"subject._lastUpdated": "gt2000-01-01"}) == ["o1", "o2", "o3", "o4"]
        assert ids(client, "/fhir/Observation", **{"subject._lastUpdated": "lt2000-01-01"}) == []
        assert ids(client, "/fhir/Observation", **{"subject:Patient._id": "p2"}) == ["o3", "o4"]

    def test_include_revinclude_iterate(self, client) -> None:
        bundle = client.get("/fhir/Observation?_id=o1&_include=Observation:subject").json()
        assert [(e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]] == [("o1", "match"),
                                                                                         ("p1", "include")]
        bundle = client.get("/fhir/Patient?_id=p1&_revinclude=Observation:subject").json()
        assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["o1", "o2", "p1"]
        bundle = client.get(
            "/fhir/Observation?_id=o1&_include=Observation:subject&_include:iterate=Patient:organization"
        ).json()
        assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["o1", "p1", "qmh"]
        assert bundle["total"] == 1

    def test_sort_several_keys(self, client) -> None:
        bundle = client.get("/fhir/Observation?_sort=subject,-value-quantity").json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == ["o2", "o1", "o3", "o4"]
        bundle = client.get("/fhir/Observation?_sort=-_id").json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == ["o4", "o3", "o2", "o1"]

    def test_summary_elements_total(self, client) -> None:
        count = client.get("/fhir/Observation?_summary=count").json()
        assert count["total"] == 4 and "entry" not in count
        summary = client.get("/fhir/Patient?_id=p1&_summary=true").json()["entry"][0]["resource"]
        assert "identifier" in summary and "managingOrganization" in summary
        assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
        elements = client.get("/fhir/Patient?_id=p1&_elements=name").json()["entry"][0]["resource"]
        assert set(elements) == {"resourceType", "id", "meta", "name"}
        no_total = client.get("/fhir/Observation?_total=none").json()
        assert "total" not in no_total and len(no_total["entry"]) == 4

    def test_search_via_post(self, client) -> None:
        response = client.post("/fhir/Observation/_search", data={"subject": "Patient/p1"},
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200
        assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == ["o1", "o2"]


class TestUnknownParameters:
    def test_strict_by_default(self, client) -> None:
        response = client.get("/fhir/Patient", params={"shoe-size": "42"})
        assert response.status_code == 400
        assert "shoe-size" in response.json()["issue"][0]["diagnostics"]

    def test_lenient_ignores_and_reports_in_self_link(self, client) -> None:
        response = client.get("/fhir/Patient", params={"shoe-size": "42", "gender": "male"},
                              headers={"Prefer": "handling=lenient"})
        assert response.status_code == 200
        self_link = next(link["url"] for link in response.json()["link"] if link["relation"] == "self")
        assert "gender=male" in self_link and "shoe-size" not in self_link

    def test_bad_modifier_and_values(self, client) -> None:
        assert client.get("/fhir/Patient", params={"gender:exact": "male"}).status_code == 400
        assert client.get("/fhir/Observation", params={"value-quantity": "abc"}).status_code == 400
        assert client.get("/fhir/Patient", params={"_count": "-1"}).status_code == 400
        assert client.get("/fhir/Patient", params={"_sort": "nonsense"}).status_code == 400
        assert client.get("/fhir/Patient", params={"_include": "Patient:name"}).status_code == 400
        for url in ("/fhir/Patient?name=a%00b", "/fhir/Observation?subject=Patient/a%00", "/fhir/Patient?identifier=x%7Ca%00"):
            refused = client.get(url)  # a NUL was a 500 from PostgreSQL
            assert refused.status_code == 400 and "NUL" in refused.json()["issue"][0]["diagnostics"], url


class TestPaging:
    def test_pages_cover_everything_once(self, client) -> None:
        for i in range(12):
            put(client, {"resourceType": "Patient", "id": f"p{i:02d}", "name": [{"family": f"F{i:02d}"}]})
        first = client.get("/fhir/Patient?_count=5&_sort=family").json()
        assert first["total"] == 12
        seen = [e["resource"]["id"] for e in first["entry"]]
        next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
        while next_url:
            page = client.get(next_url.replace("http://testserver", "")).json()
            seen += [e["resource"]["id"] for e in page["entry"]]
            next_url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        assert seen == [f"p{i:02d}" for i in range(12)]
        previous = next(link["url"] for link in page["link"] if link["relation"] == "previous")
        assert client.get(previous.replace("http://testserver", "")).status_code == 200

    def test_pages_stay_stable_under_concurrent_inserts(self, client) -> None:
        for i in range(10):
            put(client, {"resourceType": "Patient", "id": f"s{i:02d}", "name": [{"family": f"S{i:02d}"}]})
        first = client.get("/fhir/Patient?_count=4&_sort=family").json()
        seen = [e["resource"]["id"] for e in first["entry"]]
        writers = [
            threading.Thread(target=put, args=(client, {"resourceType": "Patient", "id": f"new{i}",
                                                         "name": [{"family": f"A{i}"}]}))
            for i in range(6)
        ]
        for writer in writers:
            writer.start()
        next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
        while next_url:
            page = client.get(next_url.replace("http://testserver", "")).json()
            assert page["total"] == 10
            seen += [e["resource"]["id"] for e in page["entry"]]
            next_url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        for writer in writers:
            writer.join()
        assert seen == [f"s{i:02d}" for i in range(10)]  # no duplicates, nothing skipped
        assert client.get("/fhir/Patient?_summary=count").json()["total"] == 16

    def test_expired_page_is_gone(self, client) -> None:
        response = client.get("/fhir", params={"_getpages": "no-such-snapshot", "_offset": "5"})
        assert response.status_code == 410
