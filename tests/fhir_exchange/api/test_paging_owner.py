"""Search pages are served to the caller that searched: the saved result set (and its total,
which counts what the gate released to that caller) is not anyone else's to read."""

from __future__ import annotations

from tests.conftest import issue_token


def test_next_links_serve_only_their_searcher(client, app) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        assert client.post("/fhir/Observation", json={"resourceType": "Observation", "status": "final",
                                                      "code": {"text": f"t{n}"}}).status_code == 201
    first = client.get("/fhir/Observation", params={"_count": "1"}).json()
    assert first["total"] == 3
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    path = next_url[next_url.index("/fhir"):]

    assert client.get(path).status_code == 200  # the searcher
    other = {"Authorization": f"Bearer {issue_token(app, client_id='another-client', institution='another-hospital')}"}
    refused = client.get(path, headers=other)
    assert refused.status_code == 410 and refused.json()["resourceType"] == "OperationOutcome"
    narrower = {"Authorization": f"Bearer {issue_token(app, scope='system/Observation.rs')}"}
    assert client.get(path, headers=narrower).status_code == 410  # same client, other grant: not the same caller
