"""The consent page in a real browser (Playwright driving Debian's Chromium) against the live
server, with the FHIR API checked alongside: what the patient does on the page is what
institutions get over FHIR, on the very next request.

Screenshots of every step go to ``test-artifacts/consent-page/``. Chromium is never
downloaded: the test uses ``/usr/bin/chromium`` and skips without it, except in CI
(``BAYLINK_TEST_REQUIRE_POSTGRES`` set), where a missing browser fails the run.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from consent.policy import CROSS_BORDER_URL, DATA_CATEGORY
from consent.web.messages import CATALOG
from fhir_exchange.identity.documents import hkid_check_character
from fhir_exchange.institutions.registry import load_registry
from tests.conftest import ROOT, issue_token
from tests.consent.test_gate_rest import HKID, operator

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "consent-page"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
EN, HANT, HANS = 0, 1, 2  # columns of messages.CATALOG


def _says(key: str, column: int = EN) -> str:
    return CATALOG[key][column]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("BAYLINK_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser test (.ci/run installs it: apt-get install -y "
                        "chromium). Never `playwright install`.")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); CI always runs this test")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def person(app, live_server: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A patient of Queen Mary with a unique HKID and mobile phone, an HbA1c result and a
    medicine; the institutions registry loaded."""
    with operator(app) as service:
        load_registry(service)
    digits = f"{secrets.randbelow(10**6):06d}"
    hkid = f"K{digits}({hkid_check_character('K', digits)})"
    phone = f"+852 9{secrets.randbelow(10**7):07d}"
    pid = f"pp-{uuid.uuid4().hex[:10]}"
    person = {"id": pid, "hkid": hkid, "phone": phone, "observation": f"{pid}-hba1c", "medication": f"{pid}-metformin"}
    qmh = _headers(app, "ha-queen-mary")
    with httpx.Client(base_url=live_server, timeout=10) as fhir:
        for resource in (
            {"resourceType": "Patient", "id": pid, "identifier": [{"system": HKID, "value": hkid}],
             "name": [{"family": "CHAN", "given": ["Siu Ming"]}, {"text": "陳小明"}], "birthDate": "1958-05-06",
             "telecom": [{"system": "phone", "use": "mobile", "value": phone}]},
            {"resourceType": "Observation", "id": person["observation"], "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}], "text": "HbA1c"},
             "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-10-01",
             "valueQuantity": {"value": 7.1, "unit": "%"}},
            {"resourceType": "MedicationRequest", "id": person["medication"], "status": "active", "intent": "order",
             "medicationCodeableConcept": {"text": "metformin"}, "subject": {"reference": f"Patient/{pid}"}},
        ):
            response = fhir.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=qmh)
            assert response.status_code == 201, response.text
    return person


def _headers(app, institution: str, purpose: str = "TREAT", **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = issue_token(app, institution=institution, client_id=f"{institution}-his")
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json", "X-Purpose-Of-Use": purpose, **extra}


def _read(live_server: str, headers: dict[str, str], reference: str) -> int:
    return httpx.get(f"{live_server}/{reference}", headers=headers, timeout=10).status_code


def _ask(live_server: str, headers: dict[str, str], patient: str, requester: str, categories: list[str]) -> str:
    """The institution asks the patient: a proposed Consent, naming itself as recipient."""
    body = {
        "resourceType": "Consent", "status": "proposed",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": {
            "type": "permit", "period": {"start": "2026-01-01", "end": "2030-12-31"},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "IRCP"}]}, "reference": {"reference": f"Organization/{requester}"}}],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "code": [{"coding": [{"system": DATA_CATEGORY, "code": c}]} for c in categories],
            "extension": [{"url": CROSS_BORDER_URL, "valueBoolean": True}],
        },
    }
    response = httpx.post(f"{live_server}/Consent", json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _page_url(live_server: str, path: str = "") -> str:
    return live_server.removesuffix("/fhir") + "/consent" + path


def _shot(page: Page, backend: str, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{backend}-{name}.png"), full_page=True)


def _unlabelled(page: Page) -> list[str]:
    """Form controls a screen reader could not name: no <label>, aria-label or aria-labelledby."""
    return page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(el => el.type !== 'hidden')
        .filter(el => !(el.labels && [...el.labels].some(l => l.textContent.trim()))
                      && !(el.getAttribute('aria-label') || '').trim()
                      && !(el.getAttribute('aria-labelledby') || '').trim())
        .map(el => el.outerHTML)""")


def _unnamed_buttons(page: Page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('button, a[href]')]
        .filter(el => !el.textContent.trim() && !(el.getAttribute('aria-label') || '').trim())
        .map(el => el.outerHTML)""")


def _accessible(page: Page) -> None:
    assert _unlabelled(page) == []
    assert _unnamed_buttons(page) == []


def _fits(page: Page) -> None:
    width, inner = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url} scrolls sideways: {width}px wide in a {inner}px viewport"


def _code_for(app, phone: str) -> str:  # type: ignore[no-untyped-def]
    sent = [m for m in app.state.consent_page.sender.to(phone) if m.kind == "signin-code"]
    assert sent, f"no sign-in code was sent to {phone}"
    return re.search(r"\b(\d{6})\b", sent[-1].body).group(1)  # type: ignore[union-attr]


def _focused(page: Page) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.tagName")


def _tab_to(page: Page, element_id: str, limit: int = 12) -> list[str]:
    """Press Tab until the element has focus; returns the focus order on the way."""
    order = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        order.append(_focused(page))
        if order[-1] == element_id:
            return order
    raise AssertionError(f"Tab never reached #{element_id}: {order}")


def _sign_in_with_keyboard(page: Page, app, live_server: str, person: dict[str, Any], backend: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(_page_url(live_server, "?lang=en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h2")).to_have_text(_says("signin_title"))
    _accessible(page)
    _shot(page, backend, "01-sign-in")
    order = _tab_to(page, "system")
    assert order[0] == "A"  # the skip link comes first
    assert page.locator("#system").input_value() == HKID  # Hong Kong Identity Card is the first choice
    page.keyboard.press("Tab")
    assert _focused(page) == "number"
    page.keyboard.type(person["hkid"])
    page.keyboard.press("Enter")
    expect(page.locator("h2")).to_have_text(_says("verify"))
    expect(page.locator(".notice")).to_have_text(_says("code_sent"))
    _accessible(page)
    _shot(page, backend, "02-code-sent")

    # the development page shows the message that went to the phone on record
    dev = page.context.new_page()
    dev.goto(_page_url(live_server, "/dev/messages"))
    message = dev.locator(f'li[data-address="{person["phone"]}"][data-kind="signin-code"]').first
    expect(message).to_contain_text("BayLink")
    shown = re.search(r"\b(\d{6})\b", message.locator(".body").inner_text()).group(1)  # type: ignore[union-attr]
    assert shown == _code_for(app, person["phone"])
    _shot(dev, backend, "03-dev-messages")
    dev.close()

    _tab_to(page, "code")
    page.keyboard.type(shown)
    page.keyboard.press("Enter")
    page.wait_for_url("**/consent/home")


def _item(page: Page, section: str, text: str):  # type: ignore[no-untyped-def]
    return page.locator(f"#{section} li").filter(has_text=text)


def test_a_patient_decides_who_sees_their_records(browser: Browser, app, live_server: str, backend: str,  # type: ignore[no-untyped-def]
                                                  person: dict[str, Any]) -> None:
    pid = person["id"]
    observation, medication = f"Observation/{person['observation']}", f"MedicationRequest/{person['medication']}"
    szh, kiang_wu = _headers(app, "hku-szh"), _headers(app, "mo-kiang-wu")
    assert _read(live_server, szh, observation) == 404  # no consent: as if absent
    request_id = _ask(live_server, szh, pid, "hku-szh", ["results"])
    assert _read(live_server, szh, observation) == 404  # asking is not being allowed

    context = browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = context.new_page()
    try:
        _sign_in_with_keyboard(page, app, live_server, person, backend)
        cookie = next(c for c in context.cookies() if c["name"] == "baylink_consent")
        # Chromium keeps Secure cookies on http://127.0.0.1 (a potentially trustworthy origin)
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, True, "Strict", "/consent")
        expect(page.locator("main strong").first).to_have_text("Siu Ming CHAN")
        _accessible(page)
        _shot(page, backend, "04-home")

        # the institution's request waits, in plain words
        request = page.locator(f'#requests li[data-consent="{request_id}"]')
        expect(request).to_contain_text("The University of Hong Kong-Shenzhen Hospital asks: The University of Hong Kong-"
                                        "Shenzhen Hospital may see your lab and test results for treatment until")
        expect(request).to_contain_text(_says("cross_border_yes"))
        expect(page.locator("#active")).to_contain_text(_says("no_consents"))

        # give a consent with the form: Kiang Wu (Macao), results and medicines, across the boundary
        grant = page.locator("#grant")
        recipient = grant.get_by_label(_says("recipient"))
        assert recipient.input_value() == ""  # nobody is chosen for the patient: the browser asks
        assert recipient.evaluate("el => el.validity.valueMissing")
        recipient.select_option("Organization/mo-kiang-wu")
        grant.get_by_label(_says("cat_results"), exact=True).check()
        grant.get_by_label(_says("cat_medications"), exact=True).check()
        expect(grant.get_by_label(_says("purpose_TREAT"), exact=True)).to_be_checked()
        grant.locator('input[name="cross_border"]').check()
        page.fill("#end", "2030-06-30")
        _shot(page, backend, "05-grant-form")
        assert _read(live_server, kiang_wu, observation) == 404
        grant.get_by_role("button", name=_says("give")).click()
        expect(page.locator(".notice")).to_have_text(_says("granted_ok"))
        given = _item(page, "active", "Kiang Wu Hospital")
        expect(given).to_contain_text("Kiang Wu Hospital may see your medicines and lab and test results for treatment "
                                      "until 30 June 2030.")
        expect(given).to_contain_text(_says("cross_border_yes"))
        _shot(page, backend, "06-granted")
        assert _read(live_server, kiang_wu, observation) == 200
        assert _read(live_server, kiang_wu, medication) == 200

        # approve the request: Shenzhen may now read the result, and only what it asked for
        request.get_by_role("button", name=_says("approve")).click()
        expect(page.locator(".notice")).to_have_text(_says("approved_ok"))
        expect(page.locator("#requests")).to_contain_text(_says("no_requests"))
        expect(_item(page, "active", "The University of Hong Kong-Shenzhen Hospital may see")).to_have_count(1)
        _shot(page, backend, "07-approved")
        assert _read(live_server, szh, observation) == 200
        assert _read(live_server, szh, medication) == 404
        approved = httpx.get(f"{live_server}/Consent/{request_id}", headers=szh, timeout=10).json()
        assert approved["status"] == "active"

        # an emergency (break-glass) read by a hospital without any consent
        glass = _break_glass(app, live_server, "shenzhen-peoples", "unconscious after a road accident")
        assert _read(live_server, glass, medication) == 200

        # withdraw Kiang Wu's consent: its very next request is refused
        _item(page, "active", "Kiang Wu Hospital").get_by_role("button", name=_says("withdraw")).click()
        expect(page.locator(".notice")).to_have_text(_says("withdrawn_ok"))
        expect(_item(page, "active", "Kiang Wu Hospital")).to_have_count(0)
        assert _read(live_server, kiang_wu, observation) == 404
        assert _read(live_server, szh, observation) == 200  # the other consent stands
        _shot(page, backend, "08-withdrawn")
        # the patient was told of the emergency access (delivered with the page's next change)
        assert any(m.kind == "break-glass" for m in app.state.consent_page.sender.to(person["phone"]))

        # the access log: the institutions' reads, the emergency one marked as such
        page.goto(_page_url(live_server, "/home"))
        log = page.locator("#access tbody tr")
        expect(log.filter(has_text="The University of Hong Kong-Shenzhen Hospital").first).to_be_visible()
        expect(log.filter(has_text="Kiang Wu Hospital").first).to_be_visible()
        emergency = page.locator("#access tr.emergency")
        expect(emergency).to_have_count(1)
        expect(emergency).to_contain_text("Shenzhen People's Hospital")
        expect(emergency).to_contain_text(_says("emergency"))
        expect(emergency).to_contain_text("unconscious after a road accident")
        expect(log.filter(has_text=_says("you")).first).to_be_visible()  # the patient's own changes
        page.locator("#access").scroll_into_view_if_needed()
        _shot(page, backend, "09-access-log")

        # 繁體中文 and 简体中文, by the language links
        for column, name, lang, shot in ((HANT, "繁體中文", "zh-Hant-HK", "10-zh-hant"),
                                         (HANS, "简体中文", "zh-Hans-CN", "11-zh-hans")):
            page.get_by_role("navigation").get_by_role("link", name=name).click()
            expect(page.locator("html")).to_have_attribute("lang", lang)
            expect(page.locator("#requests-heading")).to_have_text(_says("requests", column))
            expect(page.locator("#active-heading")).to_have_text(_says("active_consents", column))
            expect(page.locator("#access-heading")).to_have_text(_says("access_log", column))
            expect(page.locator("#active li").first).to_contain_text(_says("cat_results", column))
            expect(page.locator("#access tr.emergency")).to_contain_text(_says("emergency", column))
            expect(page.get_by_role("link", name=name)).to_have_attribute("aria-current", "true")
            _accessible(page)
            _shot(page, backend, shot)
        page.get_by_role("link", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")

        page.get_by_role("button", name=_says("sign_out")).click()
        expect(page.locator(".notice")).to_have_text(_says("signed_out"))
        page.goto(_page_url(live_server, "/home"))
        expect(page.locator("h2")).to_have_text(_says("signin_title"))
        _shot(page, backend, "12-signed-out")
    finally:
        context.close()


def _break_glass(app, live_server: str, institution: str, reason: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Headers of an emergency read: ETREAT, a reason, and a clinician with the break-glass role."""
    from fhir_exchange.auth.keys import generate_private_key_pem, on_behalf_of, public_jwks
    from fhir_exchange.auth.service import ClientRegistry

    pem = generate_private_key_pem()
    with app.state.fhir.sessions() as session, session.begin():
        client_id = ClientRegistry(session).register(institution, public_jwks(pem), "system/*.cruds").client_id
    token = issue_token(app, institution=institution, client_id=client_id)
    doctor = on_behalf_of(client_id, pem, live_server, "PractitionerRole/er-1", ["break-glass"])
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json", "X-Purpose-Of-Use": "ETREAT",
            "X-On-Behalf-Of": doctor, "X-Break-Glass-Reason": reason}


def test_the_page_works_on_a_phone(browser: Browser, app, live_server: str, backend: str,  # type: ignore[no-untyped-def]
                                   person: dict[str, Any]) -> None:
    szh = _headers(app, "hku-szh")
    _ask(live_server, szh, person["id"], "hku-szh", ["results", "medications", "problems"])
    glass = _break_glass(app, live_server, "shenzhen-peoples", "found unconscious at Lo Wu border control point")
    assert _read(live_server, glass, f"MedicationRequest/{person['medication']}") == 200

    context: BrowserContext = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                                  locale="zh-HK")
    page = context.new_page()
    try:
        page.goto(_page_url(live_server))
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hant-HK")  # from Accept-Language zh-HK
        expect(page.locator("h2")).to_have_text(_says("signin_title", HANT))
        _fits(page)
        _shot(page, backend, "phone-01-sign-in")
        page.fill("#number", person["hkid"])
        page.get_by_role("button", name=_says("send_code", HANT)).click()
        expect(page.locator(".notice")).to_have_text(_says("code_sent", HANT))
        _fits(page)
        _shot(page, backend, "phone-02-code-sent")
        assert app.state.consent_page.sender.to(person["phone"])[-1].language == "zh-Hant"
        # switching language on the code page (answered to a POST) lands on the sign-in page, not a 405
        page.get_by_role("link", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("h2")).to_have_text(_says("signin_title"))
        page.fill("#number", person["hkid"])
        page.get_by_role("button", name=_says("send_code")).click()
        assert app.state.consent_page.sender.to(person["phone"])[-1].language == "en"
        page.fill("#code", _code_for(app, person["phone"]))
        page.get_by_role("button", name=_says("verify")).click()
        page.wait_for_url("**/consent/home")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.select_option("#recipient", "jurisdiction:CN")
        page.locator("#grant").get_by_label(_says("cat_allergies"), exact=True).check()
        page.locator("#grant").get_by_role("button", name=_says("give")).click()
        expect(page.locator(".notice")).to_have_text(_says("granted_ok"))
        for column, lang, shot in ((HANT, "zh-Hant", "phone-03-home-zh-hant"), (HANS, "zh-Hans", "phone-04-home-zh-hans"),
                                   (EN, "en", "phone-05-home-en")):
            page.goto(_page_url(live_server, f"/home?lang={lang}"))
            expect(page.locator("#requests-heading")).to_have_text(_says("requests", column))
            expect(page.locator("#access tr.emergency")).to_have_count(1)
            expect(page.locator("#active li")).to_have_count(1)
            _accessible(page)
            _fits(page)
            _shot(page, backend, shot)
    finally:
        context.close()
