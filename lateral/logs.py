"""Logging for every `lateral` process: one place that sets it up, as text or JSON lines, privacy-safe.

Each line carries the check id (from `check_context`) and the OpenTelemetry trace and span ids when known,
so that an operator can follow one check across the broker and the adapters.

Log lines carry ids, agency ids, purposes and outcomes, never personal data. Exceptions are where data leaks
by accident: an exception's message and the source lines of its traceback may quote a request (a name, a
date of birth). So whenever a record has an exception, it is rendered as its type names and its frames
(`path:line in function`) only: never its message, never source lines, never a cached traceback text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import site
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

from opentelemetry import trace

FORMATS: Final = ("text", "json")
MAX_FRAMES: Final = 12

_check_id: ContextVar[str | None] = ContextVar("lateral_check_id", default=None)
# Which worker of `lateral broker serve --workers N` this process is (lateral/workers.py), if any.
_worker: int | None = None

# --- the check id -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def check_context(check_id: str) -> Iterator[None]:
    """Logs inside the block (in this task or thread, and in tasks it starts) carry `check_id`."""
    token = _check_id.set(check_id)
    try:
        yield
    finally:
        _check_id.reset(token)


def current_check_id() -> str | None:
    """The check being handled here, if any."""
    return _check_id.get()


def set_worker(index: int | None) -> None:
    """Every line this process logs from now on names it as worker `index` (1, 2, ...) of `lateral broker
    serve --workers N`: the workers share one journal, and a check's lines must lead to one process."""
    global _worker
    _worker = index


def _trace_ids() -> tuple[str, str] | None:
    """The current OpenTelemetry span's trace and span ids as lowercase hex, if there is a valid span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# --- exceptions, without their messages ---------------------------------------------------------------------


def _roots() -> tuple[str, ...]:
    """Directories that frame paths are shown relative to, longest first (site-packages may be inside the
    checkout): site-packages, the standard library, and the directory holding the `lateral` package."""
    found = {str(Path(p)) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    for name in ("purelib", "platlib", "stdlib", "platstdlib"):
        with contextlib.suppress(KeyError):
            found.add(str(Path(sysconfig.get_paths()[name])))
    found.add(str(Path(__file__).parent.parent))
    found.add(str(Path(__file__).resolve().parent.parent))
    return tuple(sorted(found, key=len, reverse=True))


_ROOTS: Final = _roots()


def _short_path(filename: str) -> str:
    for root in _ROOTS:
        if filename.startswith(root + os.sep):
            return filename[len(root) + 1 :]
    return filename


def _type_name(error: BaseException) -> str:
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(error, BaseExceptionGroup):
        name += "(" + ", ".join(_type_name(e) for e in error.exceptions) + ")"
    return name


def _every(error: BaseException) -> Iterator[BaseException]:
    """The exception, its chain, and the members of exception groups among them (asyncio.TaskGroup)."""
    for _, e in _chain(error):
        yield e
        if isinstance(e, BaseExceptionGroup):
            for member in e.exceptions:
                yield from _every(member)


def _chain(error: BaseException) -> Iterator[tuple[str, BaseException]]:
    """The exception and those it was raised from or while handling, each with how it is linked."""
    seen: set[int] = set()
    link = ""
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield link, current
        if current.__cause__ is not None:
            link, current = "from", current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            link, current = "while handling", current.__context__
        else:
            current = None


def exception_types(error: BaseException) -> str:
    """E.g. "RuntimeError from ValueError": the type names of an exception and its chain, no messages."""
    return " ".join(f"{link} {_type_name(e)}".strip() for link, e in _chain(error))


def exception_frames(error: BaseException) -> list[str]:
    """The innermost MAX_FRAMES frames of the exception's traceback as "path:line in function", innermost
    first. Read from the code objects only: no source lines are looked up."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(f"{_short_path(code.co_filename)}:{tb.tb_lineno} in {code.co_qualname}")
        tb = tb.tb_next
    return frames[::-1][:MAX_FRAMES]


class _Redacted:
    """Stands in for an exception passed as a log argument (grpc logs "...: %s" with the exception)."""

    def __init__(self, error: BaseException) -> None:
        self.text = f"<{_type_name(error)}>"

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def _redact_args(args: Any) -> Any:
    if isinstance(args, BaseException):
        return _Redacted(args)
    if isinstance(args, tuple):
        return tuple(_Redacted(a) if isinstance(a, BaseException) else a for a in args)
    if isinstance(args, dict):
        return {k: _Redacted(v) if isinstance(v, BaseException) else v for k, v in args.items()}
    return args


_TRACEBACK_MARKERS: Final = ("Traceback (most recent call last)", "created at (most recent call last)")


def _exception_message(record: logging.LogRecord, error: BaseException) -> str:
    """The record's own message with anything the exception could carry taken out: exception arguments
    become their type names, the exception's text and repr (e.g. asyncio's "exception=ValueError('…')")
    are replaced, a formatted traceback in the message is cut off, and asyncio's lines after the first
    (reprs of the task, the future or a callback's arguments) are dropped."""
    if isinstance(record.msg, BaseException):
        message = f"<{_type_name(record.msg)}>"
    else:
        try:
            message = str(record.msg)
            if record.args:
                message = message % _redact_args(record.args)
        except Exception:  # a bad format string: say so rather than show the arguments
            message = f"{record.msg} [unformattable log arguments]"
    for marker in _TRACEBACK_MARKERS:
        message = message.split(marker, 1)[0]
    if record.name == "asyncio" or record.name.startswith("asyncio."):
        message = message.split("\n", 1)[0].split("(", 1)[0]
    for e in _every(error):
        stand_in = f"<{_type_name(e)}>"
        for text in (repr(e), _safe_str(e)):
            if len(text) >= 3:  # shorter is no one's data, and replacing it would garble the message
                message = message.replace(text, stand_in)
    return message.rstrip()


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return ""


# --- formatters ---------------------------------------------------------------------------------------------


class _Fields:
    """What a record becomes, computed once per format: the message and what is known about context."""

    def __init__(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.exc_types: str | None = None
        self.frames: list[str] = []
        if error is not None:
            self.message = _exception_message(record, error)
            self.exc_types = exception_types(error)
            self.frames = exception_frames(error)
        else:
            try:
                self.message = record.getMessage()
            except Exception:
                self.message = f"{record.msg} [unformattable log arguments]"
        self.check_id = getattr(record, "check_id", None) or current_check_id()
        ids = _trace_ids()
        self.trace_id: str | None = ids[0] if ids else None
        self.span_id: str | None = ids[1] if ids else None


class _SafeFormatter(logging.Formatter):
    """Never renders `exc_text` (which `logging.Formatter` caches on the record, with the message) or
    `stack_info`, whichever formatter ran first; `formatException` itself gives types and frames only."""

    def formatException(self, ei: Any) -> str:
        if not ei or ei[1] is None:
            return ""
        return _summary(exception_types(ei[1]), exception_frames(ei[1]))

    def formatStack(self, stack_info: str) -> str:
        return ""


def _summary(types: str, frames: list[str]) -> str:
    """E.g. "LookupError from ValueError at broker/server.py:120 in _check < lateral/errors.py:80 in wrap"."""
    return types + (" at " + " < ".join(frames) if frames else "")


class TextFormatter(_SafeFormatter):
    """`time LEVEL logger: message check=… trace=… worker=… [Type at path:line in f < …]`, one line per
    record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = _Fields(record)
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {fields.message}"
        if fields.check_id:
            line += f" check={fields.check_id}"
        if fields.trace_id:
            line += f" trace={fields.trace_id}"
        if _worker is not None:
            line += f" worker={_worker}"
        if fields.exc_types is not None:
            line += f" [{_summary(fields.exc_types, fields.frames)}]"
        return line.replace("\r", "\\r").replace("\n", "\\n")


class JsonFormatter(_SafeFormatter):
    """One JSON object per line: time (UTC), level, logger, message, and when known check_id, trace_id,
    span_id, worker, exc_type and frames (innermost first)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _Fields(record)
        utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{utc}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": fields.message,
        }
        if fields.check_id:
            entry["check_id"] = fields.check_id
        if fields.trace_id:
            entry["trace_id"] = fields.trace_id
            entry["span_id"] = fields.span_id
        if _worker is not None:
            entry["worker"] = _worker
        if fields.exc_types is not None:
            entry["exc_type"] = fields.exc_types
            entry["frames"] = fields.frames
        # json.dumps escapes newlines inside strings, so a record is always exactly one line.
        return json.dumps(entry, ensure_ascii=False)


class _Handler(logging.StreamHandler[TextIO]):
    """A stream handler for `configure`.

    Without a stream of its own it writes to whatever `sys.stderr` is at the time (as logging's last-resort
    handler does), so a stream swapped in and out again (click's CliRunner, pytest's capture) is not kept.
    Its own failures are reported without the record's arguments, where logging's default `handleError`
    prints them with a traceback.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._own_stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if self._own_stream is None:
            self.stream = sys.stderr  # emit runs under the handler's lock
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if not logging.raiseExceptions:
            return
        error = sys.exc_info()[1]
        with contextlib.suppress(Exception):
            kind = exception_types(error) if error is not None else "error"
            sys.stderr.write(f"--- logging failed ({kind}) for a record from {record.name} ---\n")


# --- setting up ---------------------------------------------------------------------------------------------


def configure(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Sets up the root logger with a single handler writing to `stream` (by default whatever `sys.stderr`
    is when a record is written), replacing any earlier handlers, so calling it again is safe.

    Args:
        level: a logging level name, e.g. "info" or "WARNING".
        fmt: "text" (for people) or "json" (one JSON object per line, for log collectors).

    Raises:
        ValueError: an unknown level or format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = _Handler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if isinstance(old, _Handler):
            old.close()
    root.addHandler(handler)
    root.setLevel(number)


_log = logging.getLogger("lateral")


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    _log.critical("uncaught exception", exc_info=(kind, error, tb))


def _threading_excepthook(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit) or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    _log.critical(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def _unraisablehook(args: sys.UnraisableHookArgs) -> None:
    # The object's repr (e.g. a generator's) is left out: it may hold request data.
    if args.exc_value is None:
        return
    where = (args.err_msg or "Exception ignored in").split(":", 1)[0]
    _log.error("%s", where, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def install_excepthooks() -> None:
    """Routes uncaught exceptions (main thread, other threads, exceptions Python can only ignore) through
    logging, so that they are scrubbed like any other: a crashing server prints no raw traceback."""
    sys.excepthook = _excepthook
    threading.excepthook = _threading_excepthook
    sys.unraisablehook = _unraisablehook
