"""The patient sees their voucher balance and recent claims on the consent page, in their
language (the page gets the voucher summary from the composition root)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.consent.test_page import HKID, sign_in
from tests.referral.voucher.support import (
    claim,
    clock,  # noqa: F401  (fixture)
    hkid,
    patient,
    put_patient,
    registry,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.usefixtures("registry", "clock")


def test_balance_and_claims_on_the_page(app, client) -> None:  # type: ignore[no-untyped-def]
    number = hkid("A", "700007")
    put_patient(app, client, patient("vp1", number, telecom=[{"system": "phone", "use": "mobile", "value": "+852 9700 0007"}]))
    assert claim(app, client, "vp1", "500.00", "2026-11-20")["outcome"] == "approved"
    with TestClient(app, base_url="https://testserver") as browser:
        home = sign_in(app, browser, HKID, number, "+852 9700 0007")
        assert "Elderly Health Care Voucher" in home and "Balance: HK$1,500.00" in home
        panel = home[home.index('id="voucher"'):home.index('id="holdings"')]
        assert "20 November 2026" in panel and "HK$500.00 (approved)" in panel
        assert "The University of Hong Kong-Shenzhen Hospital" in panel
        chinese = browser.get("/consent/home?lang=zh-Hant").text
        assert "長者醫療券" in chinese and "餘額：HK$1,500.00" in chinese and "2026年11月20日" in chinese


def test_no_account_no_panel(app, client) -> None:  # type: ignore[no-untyped-def]
    number = hkid("B", "700008")
    put_patient(app, client, patient("vp2", number, telecom=[{"system": "phone", "use": "mobile", "value": "+852 9700 0008"}]))
    with TestClient(app, base_url="https://testserver") as browser:
        home = sign_in(app, browser, HKID, number, "+852 9700 0008")
    assert 'id="voucher"' not in home
