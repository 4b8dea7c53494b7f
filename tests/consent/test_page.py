"""The patient's consent page over HTTP (in-process): signing in with a one-time code, the
session and its protections, giving, withdrawing and answering consents with their effect on
the very next FHIR request, the evidence kept, and guardians acting for others."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from consent.records import EVIDENCE_ADDRESS, EVIDENCE_METHOD, ORIGIN_SYSTEM
from fhir_exchange import crypto
from fhir_exchange.identity.documents import hkid_check_character
from fhir_exchange.institutions.registry import load_registry
from tests.consent.test_gate_rest import _as, operator

HKID = "http://baylink.example.org/fhir/sid/hkid"
MACAO_ID = "http://baylink.example.org/fhir/sid/mo-bir"
ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def hkid(prefix: str, digits: str) -> str:
    return f"{prefix}{digits}({hkid_check_character(prefix, digits)})"


def years_ago(years: int, days: int = 0) -> str:
    today = datetime.now(UTC).date()
    born = date(today.year - years, today.month, min(today.day, 28))
    return date.fromordinal(born.toordinal() + days).isoformat()


@pytest.fixture
def page(app) -> TestClient:  # type: ignore[no-untyped-def]
    with operator(app) as service:
        load_registry(service)
    # https: the session cookie is Secure, and a client keeps it only over https
    with TestClient(app, base_url="https://testserver") as browser:
        yield browser


def put(app, client: TestClient, resource: dict, institution: str = "ha-queen-mary") -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                          headers=_as(app, client, institution))
    assert response.status_code in (200, 201), response.text
    return response.json()


def patient(pid: str, number: str, phone: str, birth: str = "1950-03-04", **extra) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": HKID, "value": number}],
            "name": [{"family": "CHAN", "given": ["Tai Man"]}], "birthDate": birth,
            "telecom": [{"system": "phone", "use": "mobile", "value": phone}], **extra}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(app, browser: TestClient, system: str, number: str, phone: str) -> str:  # type: ignore[no-untyped-def]
    """Signs in; returns the page after sign-in (home or the choice of whom to act for)."""
    form = browser.get("/consent?lang=en")
    csrf = csrf_of(form.text)
    sent = browser.post("/consent/code", data={"system": system, "number": number, "csrf": csrf})
    assert sent.status_code == 200, sent.text
    challenge = re.search(r'name="challenge" value="([^"]+)"', sent.text).group(1)  # type: ignore[union-attr]
    code = re.search(r"\b(\d{6})\b", app.state.consent_page.sender.to(phone)[-1].body).group(1)  # type: ignore[union-attr]
    home = browser.post("/consent/verify", data={"challenge": challenge, "code": code, "csrf": csrf})
    assert home.status_code == 200, home.text
    return home.text


def observation(oid: str, pid: str) -> dict:  # type: ignore[type-arg]
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "HbA1c"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-10-01"}


GRANT = {"recipient": "Organization/hku-szh", "categories": ["results", "medications"], "purposes": ["TREAT"],
         "end": "2099-06-30", "cross_border": "yes"}


class TestSignIn:
    def test_code_to_the_phone_on_record_then_a_secure_session(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("A", "111111")
        put(app, page, patient("s1", number, "+852 9000 0001"))
        form = page.get("/consent?lang=en")
        assert "Document number" in form.text and form.headers["content-type"].startswith("text/html")
        csrf = csrf_of(form.text)
        sent = page.post("/consent/code", data={"system": HKID, "number": number.replace("(", "").replace(")", ""),
                                                "csrf": csrf})
        assert sent.status_code == 200 and "One-time code" in sent.text
        messages = app.state.consent_page.sender.to("+852 9000 0001")
        assert len(messages) == 1 and messages[0].channel == "sms" and "sign-in code" in messages[0].body
        code = re.search(r"\b(\d{6})\b", messages[0].body).group(1)  # type: ignore[union-attr]
        challenge = re.search(r'name="challenge" value="([^"]+)"', sent.text).group(1)  # type: ignore[union-attr]

        wrong = page.post("/consent/verify", data={"challenge": challenge, "code": f"{(int(code) + 1) % 10**6:06d}",
                                                   "csrf": csrf})
        assert wrong.status_code == 401 and "not right" in wrong.text
        right = page.post("/consent/verify", data={"challenge": challenge, "code": code, "csrf": csrf},
                          follow_redirects=False)
        assert right.status_code == 303 and right.headers["location"] == "/consent/home"
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie and "path=/consent" in cookie
        home = page.get("/consent/home")
        assert "Tai Man CHAN" in home.text and "no-store" in home.headers["cache-control"]
        # a code works once
        again = page.post("/consent/verify", data={"challenge": challenge, "code": code, "csrf": csrf})
        assert again.status_code == 401

    def test_an_unknown_number_answers_the_same_and_sends_nothing(self, app, page) -> None:  # type: ignore[no-untyped-def]
        before = len(list(app.state.consent_page.sender.recent()))
        csrf = csrf_of(page.get("/consent?lang=en").text)
        sent = page.post("/consent/code", data={"system": HKID, "number": hkid("Z", "999999"), "csrf": csrf})
        assert sent.status_code == 200 and "If this number is on record" in sent.text
        assert len(list(app.state.consent_page.sender.recent())) == before
        challenge = re.search(r'name="challenge" value="([^"]+)"', sent.text).group(1)  # type: ignore[union-attr]
        for guess in ("000000", "123456"):
            assert page.post("/consent/verify", data={"challenge": challenge, "code": guess, "csrf": csrf}).status_code == 401

    def test_invalid_number_is_named(self, page) -> None:  # type: ignore[no-untyped-def]
        csrf = csrf_of(page.get("/consent?lang=en").text)
        bad = page.post("/consent/code", data={"system": HKID, "number": "A1234567", "csrf": csrf})
        assert bad.status_code == 400 and "not valid" in bad.text

    def test_requests_for_codes_are_rate_limited(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("B", "222222")
        put(app, page, patient("s2", number, "+852 9000 0002"))
        csrf = csrf_of(page.get("/consent?lang=en").text)
        statuses = [page.post("/consent/code", data={"system": HKID, "number": number, "csrf": csrf}).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert len(app.state.consent_page.sender.to("+852 9000 0002")) == 3

    def test_five_wrong_tries_kill_the_code(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("C", "333333")
        put(app, page, patient("s3", number, "+852 9000 0003"))
        csrf = csrf_of(page.get("/consent?lang=en").text)
        sent = page.post("/consent/code", data={"system": HKID, "number": number, "csrf": csrf})
        challenge = re.search(r'name="challenge" value="([^"]+)"', sent.text).group(1)  # type: ignore[union-attr]
        code = re.search(r"\b(\d{6})\b", app.state.consent_page.sender.to("+852 9000 0003")[-1].body).group(1)  # type: ignore[union-attr]
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(5):
            assert page.post("/consent/verify", data={"challenge": challenge, "code": wrong, "csrf": csrf}).status_code == 401
        assert page.post("/consent/verify", data={"challenge": challenge, "code": code, "csrf": csrf}).status_code == 401

    def test_forms_without_the_csrf_token_are_refused(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("D", "444444")
        put(app, page, patient("s4", number, "+852 9000 0004"))
        page.get("/consent?lang=en")
        assert page.post("/consent/code", data={"system": HKID, "number": number, "csrf": "forged"}).status_code == 403
        assert app.state.consent_page.sender.to("+852 9000 0004") == []
        sign_in(app, page, HKID, number, "+852 9000 0004")
        refused = page.post("/consent/grant", data={**GRANT, "csrf": "forged"}, follow_redirects=False)
        assert refused.status_code == 303 and "error=csrf" in refused.headers["location"]
        assert "You have not given any consent" in page.get("/consent/home").text

    def test_only_the_pages_own_messages_show_from_a_link(self, page) -> None:  # type: ignore[no-untyped-def]
        tricked = page.get("/consent", params={"error": "Your account is locked. Call +852 0000 0000", "lang": "en"})
        assert "locked" not in tricked.text and 'class="error"' not in tricked.text
        assert 'class="notice"' in page.get("/consent", params={"notice": "signed_out"}).text

    def test_signed_out_pages_send_you_to_sign_in(self, page) -> None:  # type: ignore[no-untyped-def]
        response = page.get("/consent/home", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/consent?")


class TestConsents:
    def test_grant_then_withdraw_takes_effect_on_the_next_request(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("E", "555555")
        put(app, page, patient("g1", number, "+852 9000 0005"))
        put(app, page, observation("g1-obs", "g1"))
        szh = _as(app, page, "hku-szh")
        assert page.get("/fhir/Observation/g1-obs", headers=szh).status_code == 404

        home = sign_in(app, page, HKID, number, "+852 9000 0005")
        granted = page.post("/consent/grant", data={**GRANT, "csrf": csrf_of(home)})
        assert granted.status_code == 200 and "Consent given." in granted.text
        assert ("The University of Hong Kong-Shenzhen Hospital may see your lab and test results and medicines "
                "for treatment until 30 June 2099.") in granted.text
        assert page.get("/fhir/Observation/g1-obs", headers=szh).status_code == 200

        consent_id = re.search(r'action="/consent/consents/([^/]+)/withdraw"', granted.text).group(1)  # type: ignore[union-attr]
        withdrawn = page.post(f"/consent/consents/{consent_id}/withdraw", data={"csrf": csrf_of(granted.text)})
        assert "Consent withdrawn" in withdrawn.text and "You have not given any consent" in withdrawn.text
        assert page.get("/fhir/Observation/g1-obs", headers=szh).status_code == 404

    def test_a_form_missing_a_choice_says_which_and_writes_nothing(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("E", "565656")
        put(app, page, patient("g1b", number, "+852 9000 0025"))
        home = sign_in(app, page, HKID, number, "+852 9000 0025")
        for missing, words in (("categories", "Tick at least one kind of record."),
                               ("purposes", "Tick at least one purpose.")):
            refused = page.post("/consent/grant", data={**{k: v for k, v in GRANT.items() if k != missing},
                                                        "csrf": csrf_of(home)})
            assert words in refused.text and "You have not given any consent" in refused.text
        past = page.post("/consent/grant", data={**GRANT, "end": "2020-01-01", "csrf": csrf_of(home)})
        assert "The end date must be today or later." in past.text
        with operator(app) as service:
            assert service.repo.search_pks(service.parser.parse("Consent", [("patient", "Patient/g1b")])) == []

    def test_each_version_carries_its_evidence(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("F", "666666")
        put(app, page, patient("g2", number, "+852 9000 0006"))
        home = sign_in(app, page, HKID, number, "+852 9000 0006")
        granted = page.post("/consent/grant", data={**GRANT, "csrf": csrf_of(home)})
        consent_id = re.search(r'action="/consent/consents/([^/]+)/withdraw"', granted.text).group(1)  # type: ignore[union-attr]
        page.post(f"/consent/consents/{consent_id}/withdraw", data={"csrf": csrf_of(granted.text)})

        with operator(app) as service:
            versions = [service.vread("Consent", consent_id, str(v)).body for v in (1, 2)]
            provenances = [s.content for s in service.repo.load(service.repo.search_pks(
                service.parser.parse("Provenance", [("target", f"Consent/{consent_id}")])))]
        assert [v["status"] for v in versions] == ["active", "inactive"]
        for version in versions:
            assert any(t.get("system") == ORIGIN_SYSTEM and t.get("code") == "patient" for t in version["meta"]["tag"])
            assert version["performer"] == [{"reference": "Patient/g2"}]
            assert version["verification"][0]["verified"] is True
            assert "PIPL" in str(version["policy"]) or "npc.gov.cn" in str(version["policy"])
        assert version["provision"]["extension"][0]["valueBoolean"] is True  # cross-border, as ticked
        targets = sorted(p["target"][0]["reference"] for p in provenances)
        assert targets == [f"Consent/{consent_id}/_history/1", f"Consent/{consent_id}/_history/2"]
        for provenance in provenances:
            extensions = {e["url"]: e for e in provenance["extension"]}
            assert extensions[EVIDENCE_METHOD]["valueCode"] == "otp-sms"
            sealed = extensions[EVIDENCE_ADDRESS]["valueString"]
            assert sealed != "testclient" and crypto.vault().open_text(sealed) == "testclient"  # sealed at rest
            assert provenance["agent"][0]["who"] == {"reference": "Patient/g2"}

    def test_institutions_cannot_alter_the_patients_consent(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("G", "777777")
        put(app, page, patient("g3", number, "+852 9000 0007"))
        home = sign_in(app, page, HKID, number, "+852 9000 0007")
        granted = page.post("/consent/grant", data={**GRANT, "csrf": csrf_of(home)})
        consent_id = re.search(r'action="/consent/consents/([^/]+)/withdraw"', granted.text).group(1)  # type: ignore[union-attr]
        with operator(app) as service:
            stored = service.read("Consent", consent_id).body
        widened = {**stored, "provision": {**stored["provision"], "code": []}}
        widened.pop("meta")
        for institution in ("ha-queen-mary", "hku-szh"):
            headers = _as(app, page, institution)
            assert page.put(f"/fhir/Consent/{consent_id}", json=widened, headers=headers).status_code == 403
            assert page.delete(f"/fhir/Consent/{consent_id}", headers=headers).status_code == 403
        with operator(app) as service:
            assert service.read("Consent", consent_id).body["meta"]["versionId"] == "1"

    def test_an_institutions_request_waits_for_the_patient(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("H", "888888")
        put(app, page, patient("g4", number, "+852 9000 0008"))
        put(app, page, observation("g4-obs", "g4"))
        szh = _as(app, page, "hku-szh")
        request = {"resourceType": "Consent", "status": "proposed",
                   "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                         "code": "patient-privacy"}]},
                   "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                   "patient": {"reference": "Patient/g4"},
                   "provision": {"type": "permit", "period": {"start": "2026-01-01", "end": "2099-12-31"},
                                 "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                                  "code": "IRCP"}]},
                                            "reference": {"reference": "Organization/hku-szh"}}],
                                 "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                              "code": "TREAT"}],
                                 "code": [{"coding": [{"system": "http://baylink.example.org/fhir/CodeSystem/data-category",
                                                       "code": "results"}]}],
                                 "extension": [{"url": "http://baylink.example.org/fhir/StructureDefinition/consent-cross-border",
                                                "valueBoolean": True}]}}
        created = page.post("/fhir/Consent", json=request, headers=szh)
        assert created.status_code == 201, created.text
        consent_id = created.json()["id"]
        assert page.get("/fhir/Observation/g4-obs", headers=szh).status_code == 404  # a request permits nothing

        home = sign_in(app, page, HKID, number, "+852 9000 0008")
        assert "The University of Hong Kong-Shenzhen Hospital asks:" in home
        approved = page.post(f"/consent/requests/{consent_id}/approve", data={"csrf": csrf_of(home)})
        assert "Request approved." in approved.text and "No requests are waiting." in approved.text
        assert page.get("/fhir/Observation/g4-obs", headers=szh).status_code == 200
        # answered once only
        again = page.post(f"/consent/requests/{consent_id}/decline", data={"csrf": csrf_of(approved.text)},
                          follow_redirects=False)
        assert "error=conflict" in again.headers["location"]

    def test_a_declined_request_permits_nothing(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("J", "121212")
        put(app, page, patient("g5", number, "+852 9000 0009"))
        put(app, page, observation("g5-obs", "g5"))
        szh = _as(app, page, "hku-szh")
        body = {"resourceType": "Consent", "status": "proposed",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                      "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": "Patient/g5"},
                "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                                  "code": "IRCP"}]},
                                            "reference": {"reference": "Organization/hku-szh"}}],
                              "extension": [{"url": "http://baylink.example.org/fhir/StructureDefinition/consent-cross-border",
                                             "valueBoolean": True}]}}
        consent_id = page.post("/fhir/Consent", json=body, headers=szh).json()["id"]
        home = sign_in(app, page, HKID, number, "+852 9000 0009")
        declined = page.post(f"/consent/requests/{consent_id}/decline", data={"csrf": csrf_of(home)})
        assert "Request declined." in declined.text
        assert page.get("/fhir/Observation/g5-obs", headers=szh).status_code == 404
        with operator(app) as service:
            assert service.read("Consent", consent_id).body["status"] == "rejected"

    def test_the_access_log_shows_who_read_what(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("K", "131313")
        put(app, page, patient("g6", number, "+852 9000 0010"))
        put(app, page, observation("g6-obs", "g6"))
        page.get("/fhir/Observation/g6-obs", headers=_as(app, page, "ha-queen-mary"))
        assert page.get("/fhir/Observation/g6-obs", headers=_as(app, page, "hku-szh")).status_code == 404
        home = sign_in(app, page, HKID, number, "+852 9000 0010")
        log = home[home.index('id="access"'):]
        assert "Queen Mary Hospital" in log and "read (lab and test results)" in log and "treatment" in log
        # the refused attempt is there too, marked as such
        refused = [row for row in log.split("<tr")[1:] if "Refused: no consent" in row]
        assert len(refused) == 1 and "The University of Hong Kong-Shenzhen Hospital" in refused[0]
        granted = page.post("/consent/grant", data={**GRANT, "csrf": csrf_of(home)})
        mine = granted.text[granted.text.index('id="access"'):]
        assert "You (consent page)" in mine and "added (consents)" in mine and "Organization" not in mine


class TestLanguages:
    def test_three_languages_and_the_choice_is_remembered(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("L", "141414")
        put(app, page, patient("l1", number, "+852 9000 0011"))
        assert "文件號碼" in page.get("/consent?lang=zh-Hant").text
        assert "证件号码" in page.get("/consent?lang=zh-Hans").text
        assert '<html lang="zh-Hans-CN">' in page.get("/consent").text  # the cookie remembers
        fresh = TestClient(app, base_url="https://testserver")
        assert '<html lang="zh-Hant-HK">' in fresh.get("/consent", headers={"Accept-Language": "zh-HK,zh;q=0.8"}).text
        assert '<html lang="zh-Hans-CN">' in fresh.get("/consent", headers={"Accept-Language": "zh-CN"}).text
        assert '<html lang="en">' in fresh.get("/consent", headers={"Accept-Language": "en-GB"}).text
        home = sign_in(app, page, HKID, number, "+852 9000 0011")
        granted = page.post("/consent/grant", data={**GRANT, "csrf": csrf_of(home)})
        chinese = page.get("/consent/home?lang=zh-Hant").text
        assert "香港大學深圳醫院 可在 2099年6月30日 前為治療查閱你的化驗及檢查結果及藥物。" in chinese
        assert "2099年6月30日" in page.get("/consent/home?lang=zh-Hans").text
        del granted


class TestGuardians:
    def _related(self, app, page, rid: str, child: str, number: str, codes: list[str], **extra) -> None:  # type: ignore[no-untyped-def]
        put(app, page, {"resourceType": "RelatedPerson", "id": rid, "patient": {"reference": f"Patient/{child}"},
                        "identifier": [{"system": HKID, "value": number}],
                        "relationship": [{"coding": [{"system": ROLE_CODES, "code": c} for c in codes]}],
                        "name": [{"text": "CHAN Mei"}], "telecom": [{"system": "phone", "use": "mobile",
                                                                     "value": f"+852 9100 {rid[-4:]}"}], **extra})

    def test_a_parent_decides_for_a_child_under_16_in_hong_kong(self, app, page) -> None:  # type: ignore[no-untyped-def]
        put(app, page, patient("kid1", hkid("M", "151515"), "+852 9000 0012", birth=years_ago(10)))
        put(app, page, observation("kid1-obs", "kid1"))
        parent = hkid("N", "161616")
        self._related(app, page, "rp-0001", "kid1", parent, ["MTH"])
        home = sign_in(app, page, HKID, parent, "+852 9100 0001")
        assert "You are acting for" in home and "as parent" in home
        page.post("/consent/grant", data={**GRANT, "csrf": csrf_of(home)})
        assert page.get("/fhir/Observation/kid1-obs", headers=_as(app, page, "hku-szh")).status_code == 200
        with operator(app) as service:
            consent = service.repo.load(service.repo.search_pks(service.parser.parse(
                "Consent", [("patient", "Patient/kid1")])))[0].content
            provenance = service.repo.load(service.repo.search_pks(service.parser.parse(
                "Provenance", [("target", f"Consent/{consent['id']}")])))[0].content
        assert consent["performer"] == [{"reference": "RelatedPerson/rp-0001"}]
        assert provenance["agent"][0]["onBehalfOf"] == {"reference": "Patient/kid1"}

    def test_the_child_under_16_cannot_decide_alone(self, app, page) -> None:  # type: ignore[no-untyped-def]
        number = hkid("P", "171717")
        put(app, page, patient("kid2", number, "+852 9000 0013", birth=years_ago(15)))
        home = sign_in(app, page, HKID, number, "+852 9000 0013")
        assert "People under 16 cannot give consent themselves here" in home
        assert 'action="/consent/grant"' not in home

    def test_a_parent_no_longer_decides_once_the_child_is_16_in_hong_kong(self, app, page) -> None:  # type: ignore[no-untyped-def]
        put(app, page, patient("kid3", hkid("R", "181818"), "+852 9000 0014", birth=years_ago(16)))
        parent = hkid("S", "191919")
        self._related(app, page, "rp-0003", "kid3", parent, ["FTH"])
        home = sign_in(app, page, HKID, parent, "+852 9100 0003")
        assert "This person is now of age and decides for themselves." in home
        assert 'action="/consent/grant"' not in home

    def test_in_macao_a_parent_decides_until_18(self, app, page) -> None:  # type: ignore[no-untyped-def]
        child = {**patient("kid4", "", "+853 6000 0015", birth=years_ago(17)),
                 "identifier": [{"system": MACAO_ID, "value": "1234567(3)"}]}
        put(app, page, child, institution="mo-kiang-wu")
        parent = hkid("T", "202020")
        self._related(app, page, "rp-0004", "kid4", parent, ["PRN"])
        home = sign_in(app, page, HKID, parent, "+852 9100 0004")
        assert "as parent" in home and 'action="/consent/grant"' in home

    def test_a_guardian_decides_for_an_adult_lacking_capacity_while_appointed(self, app, page) -> None:  # type: ignore[no-untyped-def]
        put(app, page, patient("adult1", hkid("U", "212121"), "+852 9000 0016", birth="1940-01-01"))
        guardian = hkid("V", "222223")
        self._related(app, page, "rp-0005", "adult1", guardian, ["GUARD"], period={"start": "2025-01-01"})
        home = sign_in(app, page, HKID, guardian, "+852 9100 0005")
        assert "as guardian" in home and 'action="/consent/grant"' in home
        # an appointment that has ended gives no authority
        expired = hkid("W", "232323")
        self._related(app, page, "rp-0006", "adult1", expired, ["GUARD"], period={"start": "2020-01-01", "end": "2024-12-31"})
        with TestClient(app, base_url="https://testserver") as other:
            page_text = sign_in(app, other, HKID, expired, "+852 9100 0006")
        assert "not current" in page_text and 'action="/consent/grant"' not in page_text

    def test_a_parent_of_an_adult_has_no_say(self, app, page) -> None:  # type: ignore[no-untyped-def]
        put(app, page, patient("adult2", hkid("X", "242424"), "+852 9000 0017", birth="1980-01-01"))
        parent = hkid("Y", "252525")
        self._related(app, page, "rp-0007", "adult2", parent, ["MTH"])
        home = sign_in(app, page, HKID, parent, "+852 9100 0007")
        assert 'action="/consent/grant"' not in home
