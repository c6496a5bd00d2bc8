"""Serving limits, strict params, the byte-bounded flatten cache, keep-serving, fail-fast."""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import pytest
import requests

from viralab.features.flatten import FlattenCache, flatten_analysis, flatten_document
from viralab.serve import model_cache
from viralab.serve import predict as serving
from viralab.serve.limits import (
    MAX_HORIZON,
    RequestLimitError,
    ServeLimits,
    check_horizon,
    json_depth,
    parse_bool,
)
from viralab.serve.preference_model import PreferenceModel, documents_frame
from viralab.service_limits import CLI_LIMITS, cli_limits, unreachable_message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("false", False), ("FALSE", False), ("0", False),
     ("no", False), ("true", True), (" True ", True), (1, True), (0, False)],
)  # fmt: skip
def test_params_are_parsed_strictly(value: object, expected: bool) -> None:
    assert parse_bool(value, "top_factors") is expected


@pytest.mark.parametrize("value", ["maybe", "", 2, 0.5, None, [True]])
def test_unparseable_params_are_refused_with_a_400(value: object) -> None:
    with pytest.raises(RequestLimitError, match="'top_factors' must be true or false") as err:
        parse_bool(value, "top_factors")
    assert err.value.get_http_status_code() == 400


def test_pyfunc_params_are_checked_before_scoring() -> None:
    model = PreferenceModel()  # no pipeline: a refused request never reaches it
    with pytest.raises(RequestLimitError, match="'top_factors'"):
        model.predict(None, documents_frame([{}]), params={"top_factors": "maybe"})
    with pytest.raises(RequestLimitError, match="'strict'"):
        model.predict(None, documents_frame([{}]), params={"strict": "perhaps"})


def test_horizon_is_capped() -> None:
    assert check_horizon("60") == 60
    assert check_horizon(MAX_HORIZON) == MAX_HORIZON
    for bad in (0, MAX_HORIZON + 1, 10_080, "1.5", True):
        with pytest.raises(RequestLimitError, match="horizon"):
            check_horizon(bad)


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth('{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth('"just text"') == 0
    assert json_depth('{"a": "\\"[[["}') == 1


def test_size_depth_and_strict_limits() -> None:
    limits = ServeLimits(max_document_bytes=1000, max_depth=8)
    limits.check_text(json.dumps({"a": {"b": [1, 2, {"c": "x" * 100}]}}), 0)
    with pytest.raises(RequestLimitError, match=r"document 3 is 1,\d+ bytes; the limit is 1,000"):
        # 600 characters, 1,200+ UTF-8 bytes
        limits.check_text(json.dumps({"x": "é" * 600}, ensure_ascii=False), 3)
    with pytest.raises(RequestLimitError, match="nests 9 levels deep; the limit is 8"):
        limits.check_text("[" * 9 + "]" * 9, 0)
    limits.check_text("[1, 2]", 0)  # scored with confidence 0 unless strict
    with pytest.raises(RequestLimitError, match="not a JSON object"):
        limits.check_text("[1, 2]", 0, strict=True)
    with pytest.raises(RequestLimitError, match="not a JSON object"):
        ServeLimits(strict=True).check_text("{not json", 0)


def test_a_5000_deep_document_is_a_clear_error_not_a_recursion_error() -> None:
    model = PreferenceModel()
    deep_text = "[" * 5000 + "]" * 5000
    started = time.perf_counter()
    with pytest.raises(RequestLimitError, match="nests 5000 levels deep; the limit is 64"):
        model.score([deep_text])
    assert time.perf_counter() - started < 1.0
    deep_dict: dict = {}
    node = deep_dict
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(RequestLimitError, match="nests too deeply"):
        model.score([deep_dict])  # in-process dicts: json.dumps would raise RecursionError


def test_default_limits_and_their_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServeLimits.from_config({}) == ServeLimits(1_000_000, 64, False)
    monkeypatch.setenv("VIRALAB_MAX_DOCUMENT_BYTES", "2000")
    monkeypatch.setenv("VIRALAB_STRICT_DOCUMENTS", "true")
    assert ServeLimits.from_config({}) == ServeLimits(2000, 64, True)
    # model_config (logged, or given to load_model) wins over the environment
    assert ServeLimits.from_config({"max_depth": 10, "strict": False}) == ServeLimits(
        2000, 10, False
    )
    monkeypatch.setenv("VIRALAB_MAX_DEPTH", "deep")
    with pytest.raises(RequestLimitError, match="VIRALAB_MAX_DEPTH must be an integer"):
        ServeLimits.from_config({})


def _doc(i: int, keys: int = 200) -> str:
    return json.dumps({f"section{i}": {f"k{j}": j * 0.5 for j in range(keys)}})


def test_flatten_cache_is_bounded_in_bytes_not_entries() -> None:
    cache = FlattenCache(max_bytes=200_000, max_item_bytes=100_000)
    one = FlattenCache.estimate(_doc(0), flatten_analysis(json.loads(_doc(0))))
    for i in range(100):
        flat = cache.get(_doc(i))
        assert flat[f"section{i}.k3"] == 1.5
    assert 0 < cache.bytes <= 200_000
    assert len(cache) == 200_000 // one  # as many as fit, whatever their count
    assert cache.get(_doc(99)) is cache.get(_doc(99))  # recent entries are hits
    big = json.dumps({"x": "y" * 150_000})
    before = cache.bytes
    assert cache.get(big) == {"x": "y" * 150_000}
    assert cache.bytes == before  # over max_item_bytes: flattened, never cached
    assert cache.get("{not json") == {} and cache.get("[" * 5000) == {}


def test_flatten_document_uses_the_process_cache() -> None:
    text = _doc(7, keys=3)
    assert flatten_document(text) is flatten_document(text)


def _version(v: str) -> SimpleNamespace:
    return SimpleNamespace(version=v)


def test_in_process_scoring_keeps_the_held_version_while_the_registry_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The registry lookup is replaced here; tests/faults kills a real server."""
    serving.clear_caches()
    state = {"up": True, "version": "1"}

    def lookup(name: str, ref: object, settings: object) -> SimpleNamespace:
        if not state["up"]:
            try:
                raise requests.exceptions.ConnectionError("Connection refused")
            except requests.exceptions.ConnectionError as exc:  # as MLflow wraps it
                from mlflow.exceptions import MlflowException

                raise MlflowException("API request to http://x failed with exception") from exc
        return _version(state["version"])

    monkeypatch.setattr(model_cache, "_lookup", lookup)
    caplog.set_level(logging.WARNING, logger="viralab.serve.predict")
    assert serving.resolve("preference", resolve_ttl=0).version == "1"
    state["up"] = False
    for _ in range(5):
        assert serving.resolve("preference", resolve_ttl=0, refresh_wait=1).version == "1"
    outage = [r for r in caplog.records if "registry unreachable" in r.getMessage()]
    assert len(outage) == 1, caplog.text  # said once, not on every call
    assert "keeps serving version 1" in outage[0].getMessage()
    state.update(up=True, version="2")
    # during a known outage calls never wait: the answer shows on a call after it arrives
    deadline = time.monotonic() + 10
    while serving.resolve("preference", resolve_ttl=0).version != "2":
        assert time.monotonic() < deadline, "never recovered"
        time.sleep(0.05)
    assert sum("reachable again" in r.getMessage() for r in caplog.records) == 1
    serving.clear_caches()


def test_a_registry_that_answers_no_is_not_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    from viralab.registry.client import RegistryError

    serving.clear_caches()
    answers = iter([_version("1")])

    def lookup(name: str, ref: object, settings: object) -> SimpleNamespace:
        try:
            return next(answers)
        except StopIteration:
            raise RegistryError("alias champion was removed") from None

    monkeypatch.setattr(model_cache, "_lookup", lookup)
    serving.resolve("preference", resolve_ttl=0)
    with pytest.raises(RegistryError, match="removed"):
        serving.resolve("preference", resolve_ttl=0)
    serving.clear_caches()


def test_unreachable_errors_read_as_one_line() -> None:
    import sqlalchemy

    try:
        requests.get("http://127.0.0.1:9/api", timeout=2)
    except requests.exceptions.ConnectionError as exc:
        message = unreachable_message(exc)
    assert message == "tracking server unreachable (http://127.0.0.1:9): connection refused"
    try:
        sqlalchemy.create_engine("postgresql+psycopg2://u:s3cr/et@127.0.0.1:9/x").connect()
    except sqlalchemy.exc.OperationalError as exc:
        message = unreachable_message(exc)
    assert message.startswith("database unreachable: ") and "\n" not in message
    assert "s3cr/et" not in message
    assert unreachable_message(ValueError("bad value")) is None


def test_cli_limits_apply_during_a_command_only(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}  # the user's own choice wins
    with cli_limits(env):
        assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"
        assert (
            env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == CLI_LIMITS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        )
        assert env["PGCONNECT_TIMEOUT"] == "5"
    assert env == {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def test_cli_against_a_dead_tracking_server_fails_fast_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import mlflow
    from typer.testing import CliRunner

    from viralab.cli import app

    serving.clear_caches()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # the isolation fixture resets it after
    doc = tmp_path / "doc.json"
    doc.write_text("{}")
    for args in (["predict", str(doc)], ["registry", "rollback", "preference"]):
        started = time.perf_counter()
        res = CliRunner().invoke(app, args)
        elapsed = time.perf_counter() - started
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "127.0.0.1:9" in lines[0]
        assert elapsed < 15
