"""Binary content (the originals of converted messages and documents) is sealed at rest and
opened on the way out."""

from __future__ import annotations

import base64

from sqlalchemy import select

from fhir_exchange.store.models import ResourceRow, ResourceVersion


def test_binary_data_is_sealed_in_the_database_and_read_back_plain(client, app) -> None:  # type: ignore[no-untyped-def]
    original = "MSH|^~\\&|HIS|QMH|BAYLINK|BL|20261124||ADT^A01|123|P|2.5\rPID|1||A1234563^^^HKID||陳^大文\r"
    data = base64.b64encode(original.encode()).decode()
    created = client.post("/fhir/Binary", json={"resourceType": "Binary", "contentType": "application/hl7-v2",
                                                "data": data})
    assert created.status_code == 201, created.text
    bid = created.json()["id"]
    assert created.json()["data"] == data
    assert client.get(f"/fhir/Binary/{bid}").json()["data"] == data
    with app.state.engine.connect() as conn:
        stored = conn.execute(select(ResourceRow.content).where(ResourceRow.res_id == bid)).scalar_one()
        versions = conn.execute(select(ResourceVersion.content).where(ResourceVersion.res_id == bid)).scalars().all()
    for document in (stored, *versions):
        assert document["data"] != data and "大文" not in str(document) and data not in str(document)
