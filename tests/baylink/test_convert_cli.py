"""`baylink convert FILE… [--to json]`: converts without storing, for integration engineers to
check a feed; a bad file is named with where it is wrong, and the command fails."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from baylink import cli
from tests.conftest import shared_path


def test_convert_writes_transactions_and_names_bad_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    oru = shared_path("corpora", "hl7v2-msconverter", "ORU-R01-01.hl7")
    ccd = shared_path("corpora", "ccda-msconverter", "CCD.ccda")
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(b"PID|1||123\r")
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(cli.app, ["convert", str(oru), str(ccd), "--to", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["CCD-1.json", "ORU-R01-01-1.json"]
    for path in out.iterdir():
        bundle = json.loads(path.read_text(encoding="utf-8"))
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction" and bundle["entry"]
    failed = runner.invoke(cli.app, ["convert", str(bad), "--out", str(out)])
    assert failed.exit_code == 1 and "bad.hl7" in failed.output
    assert runner.invoke(cli.app, ["convert", str(oru), "--to", "xml"]).exit_code == 2
