"""The seed's nine-stage records map onto phases and stages; nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automatos import InvalidRequestError
from automatos.cli import app
from automatos.legacy import LEGACY_STAGES, read_legacy

FIXTURE = Path(__file__).parent / "data" / "legacy" / "seed_runs.json"


def test_the_nine_stages_map_onto_the_five_phases() -> None:
    first, second = read_legacy(FIXTURE)
    assert [(s["phase"], s["number"], s["stage"]) for s in first.stages] == [
        ("plan", 1, "decompose"),
        ("plan", 2, "select_agents"),
        ("prepare", 3, "context"),
        ("execute", 4, "execute"),
        ("evaluate", 5, "aggregate"),
        ("learn", 6, "learn"),
        ("evaluate", 7, "assess"),
        ("learn", 8, "memory"),
        ("learn", 9, "respond"),
    ]
    assert first.stages[6]["data"] == {"overall_score": 0.71, "method": "heuristic"}
    assert first.request == "Compare three vector databases"
    assert first.status == "succeeded"
    assert first.final_answer == "Qdrant, Milvus and Weaviate differ in..."
    assert first.extra["legacy_unknown"] == {
        "request": "Compare three vector databases",
        "ui_theme": "dark",
    }
    assert first.extra["legacy_row"] == {"workflow_id": 42}
    assert second.status == "failed"
    assert second.request == "Summarise the Q3 report"
    assert [s["legacy_key"] for s in second.stages] == ["task_decomposition"]
    assert second.extra["legacy_unknown"] == {"debug_trace": ["stage 1 timed out"]}
    assert set(LEGACY_STAGES) == {
        "task_decomposition",
        "agent_selection",
        "context_engineering",
        "agent_execution",
        "result_aggregation",
        "learning_update",
        "quality_assessment",
        "memory_storage",
        "response_generation",
    }


def test_json_lines_and_bad_records(tmp_path: Path) -> None:
    lines = tmp_path / "runs.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in json.loads(FIXTURE.read_text())))
    assert [r.id for r in read_legacy(lines)] == ["legacy-0001", "legacy-0002"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x", "input_data": {}}, {"id": "y"}]))
    with pytest.raises(InvalidRequestError, match="record 2 is not a legacy execution"):
        read_legacy(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidRequestError, match="neither JSON nor JSON lines"):
        read_legacy(broken)


def test_import_legacy_from_the_cli() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["runs", "import-legacy", str(FIXTURE)])
    assert result.exit_code == 0, result.output
    assert "imported 2 legacy runs: legacy-0001, legacy-0002" in result.output
    again = runner.invoke(app, ["runs", "import-legacy", str(FIXTURE)])
    assert "already stored, left as they were: legacy-0001, legacy-0002" in again.output
    shown = runner.invoke(app, ["runs", "show", "legacy-0001", "--json"])
    data = json.loads(shown.stdout)
    assert data["status"] == "succeeded"
    assert len(data["stages"]) == 9
    assert data["extra"]["legacy_unknown"]["ui_theme"] == "dark"
    assert data["started_at"].startswith("2026-01-14T10:02:03")
    text = runner.invoke(app, ["runs", "show", "legacy-0002"])
    assert "stage decompose (plan): (imported)" in text.output


def test_a_bad_record_is_one_line_naming_its_fields(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x", "input_data": {}}, {"id": "", "status": 3}]))
    with pytest.raises(InvalidRequestError) as info:
        read_legacy(bad)
    assert str(info.value) == (
        f"{bad}: record 2 is not a legacy execution: id: String should have at least 1 "
        "character; status: Input should be a valid string; input_data: Field required"
    )
