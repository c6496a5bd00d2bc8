"""The redaction rules: secret keys by name segment, URLs whatever their password holds, free
text, tracebacks and log records; passwords are generated from the whole printable range."""

from __future__ import annotations

import io
import logging
import string
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from viralab.config import flatten_params
from viralab.redaction import (
    REDACTED,
    RedactingFilter,
    format_exception,
    install_log_redaction,
    is_redacted,
    is_secret_key,
    mask_url,
    redact,
    redact_text,
    register_secret,
    url_passwords,
)

PRINTABLE = string.printable  # letters, digits, punctuation and whitespace
NO_SPACE = string.digits + string.ascii_letters + string.punctuation
passwords = st.text(alphabet=PRINTABLE, min_size=1, max_size=40)
# In free text a URL ends at whitespace, so a raw password embedded there has none; the full
# range is covered there by percent-encoding (what a URL needs) and by the known-value mask.
# `*` is the mask itself: "x***" after masking would read as a password "x***".
text_passwords = st.text(alphabet=NO_SPACE.replace("*", ""), min_size=6, max_size=40)
users = st.sampled_from(["alice", "", "svc.viralab", "u-1"])
# the fixtures used with @given only set things up (env, logging) the same for every example
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# What the checked text holds besides the password (this file's strings, paths in tracebacks):
# a password that is a piece of it proves nothing either way.
_CONTEXT = Path(__file__).read_text() + __file__ + "Traceback (most recent call last)"


def fresh(pw: str) -> None:
    assume(pw not in _CONTEXT)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret-looking variable of the test machine masks the generated text by value."""
    import os

    from viralab import redaction

    for name in list(os.environ):
        if is_secret_key(name) or "://" in os.environ[name]:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(redaction, "_registered", set())


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db.password",
        "MLFLOW_TRACKING_PASSWORD",
        "aws_secret_access_key",
        "AWS_ACCESS_KEY_ID",
        "api-key",
        "apiKey",
        "private_key",
        "client_secret",
        "session.token",
        "pwd",
        "credentials",
    ],
)
def test_secret_keys_match_by_name_segment(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["key", "features.require_version_key", "sweep.params.alpha.key", "keys_seen", "tokenizer",
     "max_tokens", "monkey", "passwordless_mode", "url"],
)  # fmt: skip
def test_settings_named_like_keys_survive(key: str) -> None:
    assert not is_secret_key(key)


def test_require_version_key_and_sweep_key_are_kept() -> None:
    cfg = {"features": {"require_version_key": "comedyStyle"}, "sweep": {"key": "alpha"}}
    assert redact(cfg) == cfg


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://alice:ab/Cd+9xY=@nohost:5432/v", "postgresql://alice:***@nohost:5432/v"),
        ("postgresql://:onlypw@host/db", "postgresql://:***@host/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:a%40b@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db?sslmode=require&password=pw", "postgresql://u@h/db?sslmode=require&password=***"),
        ("http://h:5000/path?token=t0k", "http://h:5000/path?token=***"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("http://alice@host:5000", "http://alice@host:5000"),
    ],
)  # fmt: skip
def test_mask_url_cases_from_the_issue(url: str, masked: str, clean_env: None) -> None:
    assert mask_url(url) == masked


@PROPERTY
@given(user=users, pw=passwords)
def test_no_password_survives_a_config_dict(user: str, pw: str, clean_env: None) -> None:
    url = f"postgresql://{user}:{pw}@db.example:5432/app"
    cfg = {"data": {"url": url, "source": "postgres"}, "db": {"password": pw}, "alpha": 1.0}
    safe = redact(cfg)
    assert safe["data"]["url"] == f"postgresql://{user}:{REDACTED}@db.example:5432/app"
    assert safe["db"]["password"] == REDACTED
    assert safe["alpha"] == 1.0
    assert flatten_params(safe)["data.url"] == safe["data"]["url"]
    assert yaml.safe_load(OmegaConf.to_yaml(OmegaConf.create(safe))) == safe  # config.yaml


@PROPERTY
@given(pw=passwords)
def test_no_password_survives_a_query_argument(pw: str, clean_env: None) -> None:
    encoded = f"postgresql://h/db?sslmode=require&password={quote(pw, safe='')}"
    assert mask_url(encoded) == f"postgresql://h/db?sslmode=require&password={REDACTED}"
    assume("&" not in pw)  # raw, a `&` would start the next argument
    raw = f"postgresql://h/db?sslmode=require&password={pw}"
    assert mask_url(raw) == f"postgresql://h/db?sslmode=require&password={REDACTED}"


@PROPERTY
@given(user=users, pw=text_passwords)
def test_no_password_survives_free_text(user: str, pw: str, clean_env: None) -> None:
    fresh(pw)
    url = f"postgresql+psycopg2://{user}:{pw}@10.0.0.7:5432/app"
    message = f"could not connect to {url} (timeout)\nretrying {url}"
    out = redact_text(message)
    assert pw not in out
    assert out.count(f"postgresql+psycopg2://{user}:{REDACTED}@") == 2
    encoded = redact_text(f"cannot open {url.replace(pw, quote(pw, safe=''))} now")
    assert quote(pw, safe="") not in encoded and pw not in encoded


@PROPERTY
@given(pw=st.text(alphabet=PRINTABLE.replace("*", ""), min_size=4, max_size=40))
def test_a_password_given_in_the_environment_is_masked_wherever_it_appears(
    pw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh(pw)
    assume(pw.strip() == pw and pw.strip())
    monkeypatch.setenv("VIRALAB_DATABASE_URL", f"postgresql://bob:{quote(pw, safe='')}@db/app")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", pw[::-1] + "Z")
    out = redact_text(f'FATAL: password authentication failed; got "{pw}" and {pw[::-1]}Z')
    assert pw not in out and pw[::-1] + "Z" not in out
    assert quote(pw, safe="") not in redact_text(f"dsn {quote(pw, safe='')}")


@PROPERTY
@given(user=users, pw=text_passwords)
def test_no_password_survives_a_traceback(user: str, pw: str, clean_env: None) -> None:
    fresh(pw)
    url = f"http://{user}:{pw}@tracking.example:5000"
    try:
        try:
            raise ConnectionError(f"Max retries exceeded with url: {url}/api/2.0/runs")
        except ConnectionError as inner:
            raise RuntimeError(f"API request to {url} failed") from inner
    except RuntimeError as exc:
        text = format_exception(exc)
    assert "RuntimeError" in text and "ConnectionError" in text
    assert pw not in text


@pytest.fixture
def log_redaction() -> Iterator[None]:
    """Install the record factory for one test and put logging back afterwards."""
    factory = logging.getLogRecordFactory()
    showwarning = warnings.showwarning
    install_log_redaction()
    yield
    logging.setLogRecordFactory(factory)
    logging.captureWarnings(False)
    warnings.showwarning = showwarning


@PROPERTY
@given(user=users, pw=text_passwords)
def test_no_password_survives_a_log_record(
    user: str, pw: str, clean_env: None, log_redaction: None
) -> None:
    fresh(pw)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("viralab.test_redaction")
    logger.addHandler(handler)
    try:
        url = f"postgresql://{user}:{pw}@db:5432/app"
        logger.warning("reading from %s", url)
        logger.warning("dsn: %r", {"url": url, "password": pw})
        try:
            raise OSError(f"no route to {url}")
        except OSError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "reading from postgresql://" in out and "OSError" in out
    assert pw not in out


def test_filter_redacts_a_record_made_before_the_factory(clean_env: None) -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "at %s", ("mysql://r:hunter2@h",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == f"at mysql://r:{REDACTED}@h"


def test_warnings_pass_through_the_redaction(clean_env: None, log_redaction: None) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("py.warnings").addHandler(handler)
    try:
        warnings.warn("slow store http://a:hunter22@h:5000", UserWarning, stacklevel=1)
    finally:
        logging.getLogger("py.warnings").removeHandler(handler)
    assert "hunter22" not in stream.getvalue()


def test_registered_secret_is_masked_by_value(clean_env: None) -> None:
    register_secret("postgresql://alice:ab/Cd+9xY=@nohost:5432/v")
    assert redact_text("driver said ab/Cd+9xY= is wrong") == f"driver said {REDACTED} is wrong"
    assert url_passwords("postgresql://u:a%40b@h/db") == {"a%40b", "a@b"}


def test_is_redacted_reads_every_mask() -> None:
    assert is_redacted(REDACTED) and is_redacted(f"postgresql://u:{REDACTED}@h/db")
    assert is_redacted(f"postgresql://h/db?password={REDACTED}")
    assert not is_redacted("postgresql://u@h/db") and not is_redacted(3)


def test_known_secrets_follow_the_environment_after_a_cached_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from viralab.redaction import known_secrets, redact_text

    value = "cached-answer-s3cret-77"
    monkeypatch.delenv("VIRALAB_TEST_PASSWORD", raising=False)
    assert value not in known_secrets()
    assert known_secrets() == known_secrets()  # the cached answer, a fresh list each time
    monkeypatch.setenv("VIRALAB_TEST_PASSWORD", value)
    assert value in known_secrets()
    assert value not in redact_text(f"connected with {value}")
    monkeypatch.delenv("VIRALAB_TEST_PASSWORD")
    assert value not in known_secrets()
