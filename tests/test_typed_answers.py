"""Typed answers: validated against a pydantic model or a JSON schema, one corrective turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from rlmx import RLM
from rlmx.cli.main import main
from rlmx.errors import ConfigError
from rlmx.providers.scripted import ScriptedModel
from rlmx.sandbox.inprocess import InProcessRepl

from .conftest import repl, scripted

LOG = "GET /a 200\nGET /b 500\nPOST /c 500\nGET /d 200\nGET /e 404\n"


class Tally(BaseModel):
    errors: int
    paths: list[str]


def _rlm(root: ScriptedModel) -> RLM:
    return RLM(model=root, sub_model=scripted(), sandbox=InProcessRepl)


def test_a_valid_answer_comes_back_parsed_and_the_model_was_shown_the_schema() -> None:
    root = scripted(
        repl(
            "import json\nbad = [l.split()[1] for l in context.splitlines() if l.endswith('500')]\n"
            "FINAL(json.dumps({'errors': len(bad), 'paths': bad}))"
        )
    )
    result = _rlm(root).run("Which requests failed with 500?", LOG, output=Tally)
    assert result.status == "completed"
    assert result.value == Tally(errors=2, paths=["/b", "/c"])
    assert result.to_dict()["value"] == {"errors": 2, "paths": ["/b", "/c"]}
    first_turn = root.calls[0][1].content
    assert "Answer with JSON that matches this schema" in first_turn
    assert '"errors"' in first_turn


def test_a_wrong_shape_gets_one_corrective_turn_saying_what_failed() -> None:
    root = scripted(
        repl('FINAL(\'{"errors": "two"}\')'),
        repl("result = {'errors': 2, 'paths': ['/b', '/c']}\nFINAL_VAR(result)"),
    )
    result = _rlm(root).run("Which requests failed?", LOG, output=Tally)
    assert result.status == "completed"
    assert result.value == Tally(errors=2, paths=["/b", "/c"])
    correction = root.calls[1][-1].content
    assert "does not match the required schema" in correction
    assert "errors" in correction
    assert "paths" in correction


def test_two_wrong_answers_end_the_run_with_an_error_and_no_value() -> None:
    root = scripted(repl("FINAL('not json at all')"), repl("FINAL('[1, 2]')"))
    result = _rlm(root).run("Which requests failed?", LOG, output=Tally)
    assert result.status == "error"
    assert result.value is None
    assert result.error is not None
    assert "does not match the schema" in result.error
    assert "value" not in result.to_dict()


def test_a_json_schema_dict_validates_too() -> None:
    schema = {
        "type": "object",
        "properties": {"count": {"type": "integer", "minimum": 0}},
        "required": ["count"],
    }
    root = scripted(repl("FINAL('{\"count\": -1}')"), repl("FINAL('{\"count\": 2}')"))
    result = _rlm(root).run("How many 500s?", LOG, output=schema)
    assert result.value == {"count": 2}
    assert "-1 is less than the minimum of 0" in root.calls[1][-1].content


def test_a_bad_schema_and_the_dsl_level_are_refused_up_front() -> None:
    with pytest.raises(ConfigError, match="not a usable schema"):
        _rlm(scripted()).run("q", LOG, output={"type": "no-such-type"})
    with pytest.raises(ConfigError, match="level='code'"):
        RLM(model=scripted(), level="dsl").run("q", LOG, output=Tally)


def test_the_cli_prints_the_validated_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "access.log"
    log.write_text(LOG)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["errors"]}))
    script = tmp_path / "root.json"
    script.write_text(json.dumps({"responses": [repl("FINAL('{\"errors\": 2}')")]}))
    args = ["run", "How many errors?", "-c", str(log), "-m", f"scripted:{script}", "-q"]
    assert main([*args, "--schema", str(schema), "--no-db"]) == 0
    assert json.loads(capsys.readouterr().out) == {"errors": 2}
    schema.write_text("{not json")
    assert main([*args, "--schema", str(schema), "--no-db"]) == 2
    err = capsys.readouterr().err
    assert "is not JSON" in err
    assert "Traceback" not in err
