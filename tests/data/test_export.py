"""Spec 000 §2 export: `exports/training_data_<UTC date>.json` from any source."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.services import PG_PASSWORD, free_port
from viralab.cli import app
from viralab.data.export import export_path, export_training_data, write_training_data
from viralab.data.extraction import extract_training_records, rated_at_key
from viralab.data.loading import load_into_database
from viralab.data.sample import generate_ratings
from viralab.errors import DataError

runner = CliRunner()
SPEC_KEYS = ["id", "video_id", "overall_score", "dimensions", "notes", "rated_at", "video"]


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return generate_ratings()


def test_the_file_is_named_by_the_utc_date(tmp_path):
    before = datetime.now(UTC).date()
    name = export_path(tmp_path).name
    after = datetime.now(UTC).date()
    assert name in {f"training_data_{d.isoformat()}.json" for d in (before, after)}
    assert export_path(Path("exports"), date(2025, 12, 15)) == Path(
        "exports/training_data_2025-12-15.json"
    )


def test_sample_export_holds_the_v3_owner_records_in_the_spec_format(sample, tmp_path):
    path, report = export_training_data(
        {"source": "sample", "seed": 42, "n_videos": 700},
        tmp_path / "exports",
        today=date(2025, 12, 15),
    )
    assert path == tmp_path / "exports" / "training_data_2025-12-15.json"
    text = path.read_text(encoding="utf-8")
    records = json.loads(text)
    assert text == json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    assert report.kept == len(records) == 700
    assert all(list(r) == SPEC_KEYS for r in records)
    assert all(list(r["video"]) == ["video_url", "visual_analysis"] for r in records)
    assert [rated_at_key(r) for r in records] == sorted(rated_at_key(r) for r in records)
    kept, _ = extract_training_records(sample)
    assert [r["id"] for r in records] == [r["id"] for r in kept]
    assert records[0]["video"] == kept[0]["video"]


def test_an_export_reads_back_as_data_files(sample, tmp_path):
    kept, _ = extract_training_records(sample)
    path = write_training_data(kept, tmp_path, today=date(2025, 12, 15))
    again, report = export_training_data({"source": "files", "path": str(path)}, tmp_path / "b")
    assert report.kept == report.total == 700  # no rater_type in the file: owner ratings
    assert json.loads(again.read_text()) == json.loads(path.read_text())


def test_an_unwritable_folder_is_a_data_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write export"):
        write_training_data([], blocker / "exports")


def test_cli_exports_the_sample(tmp_path):
    args = ["data", "export", "--source", "sample", "--out-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.glob("training_data_*.json")
    assert result.stdout.strip() == f"Exported 700 v3 ratings to {path}"
    assert (
        result.stderr.strip() == "kept 700 of 826 ratings (dropped: 56 few_features, 70 not_owner)"
    )


@pytest.mark.integration
def test_cli_exports_from_postgres_what_the_sample_exports(pg_url, sample, tmp_path):
    load_into_database(pg_url, ratings=sample)
    from_db = runner.invoke(
        app, ["data", "export", "--database-url", pg_url, "--out-dir", str(tmp_path / "db")]
    )
    assert from_db.exit_code == 0, from_db.output
    assert "Exported 700 v3 ratings" in from_db.stdout
    assert PG_PASSWORD not in from_db.output
    from_sample = runner.invoke(
        app, ["data", "export", "--source", "sample", "--out-dir", str(tmp_path / "s")]
    )
    (db_file,) = (tmp_path / "db").glob("*.json")
    (sample_file,) = (tmp_path / "s").glob("*.json")
    assert from_sample.exit_code == 0
    assert json.loads(db_file.read_text()) == json.loads(sample_file.read_text())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "s3"], "error: unknown source 's3'; valid: sample, files, postgres"),
        (["--source", "files"], "error: --source files needs --path FILE"),
        (["--source", "files", "--path", "gone.json"], "error: data file not found: gone.json"),
        (
            [],
            "error: no application database at sqlite:///data/viralab.db: load data first "
            "with `viralab data load`",
        ),
    ],
)
def test_cli_export_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIRALAB_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["data", "export", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert not (tmp_path / "data").exists() and not (tmp_path / "exports").exists()


def test_cli_export_from_a_dead_database(tmp_path):
    url = f"postgresql://u:{PG_PASSWORD}@127.0.0.1:{free_port()}/db"
    out = tmp_path / "exports"
    result = runner.invoke(app, ["data", "export", "--database-url", url, "--out-dir", str(out)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: database error at postgresql+psycopg2://u:***@127.0.0.1:")
    assert PG_PASSWORD not in result.output
    assert not out.exists()
