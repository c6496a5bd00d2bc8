"""The one rule set that decides what may leave the process: params, tags, `config.yaml`, log
lines, error messages and tracebacks all pass through here.

Three rules, each catching what the others miss:

- **Secret-named keys** (`is_secret_key`): a key is secret when one of its name segments (split
  on `.`, `_`, `-`, spaces and camelCase) is `password`, `secret`, `token`, ... or two adjacent
  segments spell `access_key`, `api_key`, `private_key`, ... A bare `key` is NOT secret:
  `features.require_version_key` and a sweep parameter's `key` are settings, not secrets.
- **Credentialed URLs** (`mask_url`, `redact_text`): the password of `scheme://user:pw@host`
  (also `scheme://:pw@host`) is masked, splitting at the LAST `@` of the authority because a
  generated password may hold a raw `/`, `@`, `:` or `%`; so are `password=`/`token=` style
  query or `key=value` arguments. SQLAlchemy's `make_url` splits at the first `@` and would leave
  the rest of such a password in the host, so it only serves to decode the password of a known
  URL (`url_passwords`), beside our own split.
- **Known values** (`known_secrets`): the values of secret-named environment variables and the
  passwords inside credentialed URLs in the environment (`VIRALAB_DATABASE_URL`, ...), in raw and
  percent-encoded forms, plus anything an entry point registers (`register_secret`). Masking by
  value catches a secret however it was printed (a driver's error message, a repr).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import traceback
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, quote_plus, unquote

REDACTED = "***"

#: Single name segments that make a key secret.
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "credential",
        "credentials",
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "authorization",
    }
)
#: Adjacent segment pairs that make a key secret (`aws_access_key_id`, `api-key`, `privateKey`).
SECRET_PAIRS = frozenset(
    {("access", "key"), ("secret", "key"), ("api", "key"), ("private", "key"), ("auth", "token")}
)
#: Environment variables whose names look secret but are not (`PWD` is the working directory).
NOT_SECRET_ENV = frozenset({"PWD", "OLDPWD"})
#: Shorter known values are not masked by value: they would garble ordinary text. The patterns
#: still mask them where they appear as a URL password or a `password=` argument.
MIN_SECRET_LENGTH = 4

_SEGMENT_SPLIT = re.compile(r"[._\-\s/]+|(?<=[a-z0-9])(?=[A-Z])")
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_WHOLE_URL = re.compile(rf"^(\s*{_SCHEME})(.*)$", re.DOTALL)
# In free text a URL's authority runs to the next whitespace; its userinfo ends at the last `@`
# of that run (greedy `\S*@`), so a raw `@` or `/` in the password is still inside the mask.
_URL_IN_TEXT = re.compile(rf"({_SCHEME})(\S*)@")
# `key=value`, `key: value`, `'key': 'value'`, `"key": "value"` (the value is read by
# `_mask_key_values`: quoted ones run to the closing quote, bare ones to whitespace or a
# separator). `scheme://` is not a key-value pair.
_KEY_SEP = re.compile(r"(?<![\w.\-])(?P<key>[A-Za-z][\w.\-]*)['\"]?\s*(?:=|:(?!//))\s*")
_BARE_VALUE = re.compile(r"[^\s&'\",;)}\]]*")

_registered: set[str] = set()
# A flag named like a secret (`..._TOKEN_ENABLED=true`) must not mask every "true" in the logs.
_NOT_SECRET_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})


def _segments(key: str) -> list[str]:
    return [s.lower() for s in _SEGMENT_SPLIT.split(key) if s]


def is_secret_key(key: str) -> bool:
    """Whether a config key, param name, env var or query argument names a secret."""
    segments = _segments(str(key))
    if any(s in SECRET_WORDS for s in segments):
        return True
    return any(pair in SECRET_PAIRS for pair in itertools.pairwise(segments))


def _mask_userinfo(userinfo: str) -> str:
    user, sep, _password = userinfo.partition(":")
    return f"{user}:{REDACTED}" if sep else userinfo


def _quoted_end(text: str, start: int) -> int:
    """Index of the quote closing the string that opens at `start` (backslash escapes)."""
    quote_char, i = text[start], start + 1
    while i < len(text) and text[i] != quote_char:
        i += 2 if text[i] == "\\" else 1
    return min(i, len(text))


def _mask_key_values(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _KEY_SEP.finditer(text):
        if m.start() < pos or not is_secret_key(m.group("key")):
            continue
        start = m.end()
        if start < len(text) and text[start] in "'\"":
            out += [text[pos : start + 1], REDACTED]
            pos = _quoted_end(text, start)
        else:
            end = _BARE_VALUE.match(text, start).end()  # type: ignore[union-attr]
            if end == start:
                continue
            out += [text[pos:start], REDACTED]
            pos = end
    out.append(text[pos:])
    return "".join(out)


def _mask_query(tail: str) -> str:
    head, sep, query = tail.partition("?")
    if not sep:
        return tail
    args = []
    for arg in query.split("&"):
        name, eq, _value = arg.partition("=")
        args.append(f"{name}={REDACTED}" if eq and is_secret_key(unquote(name)) else arg)
    return head + sep + "&".join(args)


def _split_url(url: str) -> tuple[str, str, str] | None:
    """(scheme://, userinfo or "", the rest after `@`) of a URL, at the last `@`."""
    m = _WHOLE_URL.match(url)
    if not m:
        return None
    scheme, rest = m.groups()
    at = rest.rfind("@")
    return (scheme, rest[:at], rest[at + 1 :]) if at >= 0 else (scheme, "", rest)


def mask_url(url: str | None) -> str | None:
    """A URL safe to print: the password (userinfo or a `password=` argument) masked, the rest
    kept for diagnosis. A value that is not a URL is masked as free text."""
    if not url:
        return url
    parts = _split_url(url)
    if parts is None:
        return redact_text(url)
    scheme, userinfo, tail = parts
    authority = f"{_mask_userinfo(userinfo)}@" if userinfo or "@" in url else ""
    # the query is read after the userinfo is masked: a raw `?` may sit in a password, a raw
    # `@` in a query value (then the "userinfo" above held the query's start)
    return _mask_known(scheme + _mask_query(authority + tail))


def url_passwords(url: str) -> set[str]:
    """The password of a credentialed URL as written and decoded (to mask it by value).

    SQLAlchemy's `make_url` decodes `%XX` but stops at the first `@`; its reading is added, our
    last-`@` split guarantees the whole password is there.
    """
    parts = _split_url(url)
    if parts is None or ":" not in parts[1]:
        return set()
    raw = parts[1].partition(":")[2]
    found = {raw, unquote(raw)}
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url).password
    except Exception:  # not an SQLAlchemy URL (http://, s3://): our split holds
        parsed = None
    if parsed:
        found.add(str(parsed))
    return {p for p in found if p}


def register_secret(value: str | None) -> None:
    """Mask this value (a URL: its password) everywhere from now on, e.g. a `--database-url`."""
    if not value:
        return
    if "://" in value:  # a URL: only its password is secret (none: nothing to mask)
        _registered.update(url_passwords(value))
    else:
        _registered.add(value)


def _env_secrets() -> set[str]:
    found: set[str] = set()
    for name, value in os.environ.items():
        if not value or name in NOT_SECRET_ENV:
            continue
        if is_secret_key(name) and value.lower() not in _NOT_SECRET_VALUES:
            found.add(value)
        if "://" in value:
            found.update(url_passwords(value))
    return found


#: (the environment and registered secrets it was computed from, `known_secrets()`'s answer)
_known_cache: tuple[tuple[tuple[tuple[str, str], ...], frozenset[str]], list[str]] | None = None


def known_secrets() -> list[str]:
    """Every secret value known now, in each form it may be printed, longest first.

    Recomputed only when the environment or the registered secrets changed. Why: every
    `redact_text` asks for it, a logged config a few hundred times (each key and value), and
    reading it means checking every environment variable and parsing each URL among them
    (SQLAlchemy's `make_url`): most of a sweep trial's config-logging time.
    """
    global _known_cache
    key = (tuple(os.environ.items()), frozenset(_registered))
    if _known_cache is not None and _known_cache[0] == key:
        return list(_known_cache[1])
    forms: set[str] = set()
    for secret in _env_secrets() | _registered:
        for form in (secret, quote(secret, safe=""), quote(secret), quote_plus(secret)):
            if len(form) >= MIN_SECRET_LENGTH:
                forms.add(form)
    found = sorted(forms, key=len, reverse=True)
    _known_cache = (key, found)
    return list(found)


#: The secrets one `redact` call masks with, read once for the whole container (its few hundred
#: strings would each re-check the environment otherwise).
_pinned: ContextVar[list[str] | None] = ContextVar("viralab_redaction_secrets", default=None)


def _mask_known(text: str) -> str:
    secrets = _pinned.get()
    for secret in known_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_text(text: str) -> str:
    """Free text (a message, a log line, a traceback) with every secret the rules find masked."""
    if not text:
        return text
    text = _mask_known(text)  # first: a known raw password may hold whitespace the patterns miss
    text = _URL_IN_TEXT.sub(lambda m: m.group(1) + _mask_userinfo(m.group(2)) + "@", text)
    return _mask_key_values(text)


def redact(value: Any, key: str = "", *, secret: bool = False) -> Any:
    """A copy of a plain container (config, params, tags) with secret-named keys and
    credentialed URLs masked; everything under a secret-named key is masked."""
    if _pinned.get() is not None:
        return _redact(value, key, secret)
    token = _pinned.set(known_secrets())
    try:
        return _redact(value, key, secret)
    finally:
        _pinned.reset(token)


def _redact(value: Any, key: str, secret: bool) -> Any:
    secret = secret or bool(key and is_secret_key(key))
    if isinstance(value, Mapping):
        return {redact_text(str(k)): _redact(v, str(k), secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, key, secret) for v in value]
    if secret and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return mask_url(value) if _WHOLE_URL.match(value) else redact_text(value)
    return value


def is_redacted(value: Any) -> bool:
    """Whether a logged value was masked (retraining drops these instead of training with
    them)."""
    if isinstance(value, str):
        return REDACTED in value
    if isinstance(value, list | tuple):
        return any(is_redacted(v) for v in value)
    return False


def format_exception(exc: BaseException) -> str:
    """The traceback of `exc` as Python prints it, redacted."""
    return redact_text("".join(traceback.format_exception(exc)))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback text through `redact_text`.

    Attach it to handlers (Hydra's job logging does); `install_log_redaction` applies the same
    rewrite to every record of every logger, whichever handler prints it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_viralab_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a malformed %-format: keep logging's own error path
        return record
    record.msg, record.args = redact_text(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    record._viralab_redacted = True
    return record


def install_log_redaction(loggers: Iterable[str] = ("", "viralab")) -> None:
    """Redact every log record as it is created (any logger, any handler, incl. MLflow's and
    Hydra's) and put a `RedactingFilter` on the named loggers' handlers. Idempotent."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_viralab", False):

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _redact_record(factory(*args, **kwargs))

        redacting_factory._viralab = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
    logging.captureWarnings(True)  # warnings (MLflow's included) then pass through logging too
