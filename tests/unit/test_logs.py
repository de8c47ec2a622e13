"""lateral.logs: JSON and text lines, check and trace ids, and exceptions rendered without their data."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator

from lateral.logs import JsonFormatter, TextFormatter, check_context, configure, current_check_id

# Synthetic personal data, distinctive enough that finding any of it in a log line can only be a leak.
DATA = ("Zebedee Quuxworth", "2011-02-29", "9434765919", "NT1 4QT")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """configure() writes here; the root logger is put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines(stream)]


def assert_no_data(text: str) -> None:
    for datum in DATA:
        assert datum not in text
    assert "Quuxworth" not in text


# Raised from source lines that quote the data themselves, so that a traceback with source lines leaks too.
def parse_subject() -> None:
    raise ValueError("bad date 2011-02-29 for Zebedee Quuxworth, NHS 9434765919, NT1 4QT")


def handle_request() -> None:
    try:
        parse_subject()
    except ValueError as error:
        raise LookupError("no match for Zebedee Quuxworth 9434765919") from error


# --- line shape ---------------------------------------------------------------------------------------------


def test_json_line_has_each_field(output: io.StringIO) -> None:
    configure("info", "json", output)
    logging.getLogger("lateral.test").info("check %s: %d agencies", "c-1", 4)
    logging.getLogger("lateral.test").debug("below the level")
    [entry] = records(output)
    assert set(entry) == {"time", "level", "logger", "message"}
    assert entry["level"] == "INFO"
    assert entry["logger"] == "lateral.test"
    assert entry["message"] == "check c-1: 4 agencies"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(entry["time"]))


def test_json_time_is_utc_with_milliseconds() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.created, record.msecs = 1_700_000_000.25, 250.0
    assert json.loads(JsonFormatter().format(record))["time"] == "2023-11-14T22:13:20.250Z"


def test_one_line_per_record_even_with_newlines(output: io.StringIO) -> None:
    configure("info", "json", output)
    logging.getLogger("t").warning("first\nsecond\r\nthird ü")
    [line] = lines(output)
    assert json.loads(line)["message"] == "first\nsecond\r\nthird ü"
    assert "ü" in line  # ensure_ascii=False

    configure("info", "text", output)
    logging.getLogger("t").warning("first\nsecond")
    assert lines(output)[1].endswith(" WARNING t: first\\nsecond")


def test_configure_twice_keeps_one_handler(output: io.StringIO) -> None:
    configure("info", "text", output)
    configure("warning", "json", output)
    logging.getLogger("t").warning("once")
    logging.getLogger("t").info("not at warning")
    assert [e["message"] for e in records(output)] == ["once"]
    assert len(logging.getLogger().handlers) == 1


def test_default_stream_is_standard_error_at_the_time(output: io.StringIO) -> None:
    """Not the one at configure() time: click's CliRunner swaps standard error in and out again."""
    configure("info", "text")
    later = io.StringIO()
    with contextlib.redirect_stderr(later):
        logging.getLogger("t").info("to the new stream")
    assert later.getvalue().endswith(" INFO t: to the new stream\n")


def test_configure_rejects_unknown_format_and_level() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure("info", "xml")
    with pytest.raises(ValueError, match="log level"):
        configure("loud")


# --- check id -----------------------------------------------------------------------------------------------


def test_check_id_only_inside_check_context(output: io.StringIO) -> None:
    configure("info", "json", output)
    log = logging.getLogger("t")
    with check_context("chk-42"):
        assert current_check_id() == "chk-42"
        log.info("inside")
    log.info("after")
    inside, after = records(output)
    assert inside["check_id"] == "chk-42"
    assert "check_id" not in after
    assert current_check_id() is None


def test_check_id_in_text(output: io.StringIO) -> None:
    configure("info", "text", output)
    with check_context("chk-7"):
        logging.getLogger("t").info("inside")
    logging.getLogger("t").info("after")
    inside, after = lines(output)
    assert inside.endswith("t: inside check=chk-7")
    assert "check=" not in after


async def test_check_id_isolated_between_tasks(output: io.StringIO) -> None:
    configure("info", "json", output)
    log = logging.getLogger("t")
    both_inside = asyncio.Barrier(2)

    async def check(check_id: str) -> None:
        with check_context(check_id):
            await both_inside.wait()  # both contexts are set before either logs
            log.info("%s", check_id)
            await asyncio.sleep(0)
            log.info("%s", check_id)

    await asyncio.gather(check("a"), check("b"))
    entries = records(output)
    assert len(entries) == 4
    assert {e["message"] for e in entries} == {"a", "b"}
    assert all(e["check_id"] == e["message"] for e in entries)


# --- trace ids ----------------------------------------------------------------------------------------------


def test_trace_and_span_ids_inside_a_span(output: io.StringIO) -> None:
    configure("info", "json", output)
    log = logging.getLogger("t")
    tracer = TracerProvider().get_tracer("t")  # a local provider: the global one is left alone
    with tracer.start_as_current_span("x") as span:
        log.info("inside")
        ids = span.get_span_context()
    log.info("outside")
    inside, outside = records(output)
    assert inside["trace_id"] == f"{ids.trace_id:032x}"
    assert inside["span_id"] == f"{ids.span_id:016x}"
    assert re.fullmatch(r"[0-9a-f]{32}", str(inside["trace_id"]))
    assert "trace_id" not in outside
    assert "span_id" not in outside

    configure("info", "text", output)
    with tracer.start_as_current_span("y") as span:
        log.info("inside")
        trace_id = f"{span.get_span_context().trace_id:032x}"
    assert lines(output)[-1].endswith(f"t: inside trace={trace_id}")


class SmallIds(IdGenerator):
    """Ids with leading zero bits, which must still be printed as 32 and 16 hex digits."""

    def generate_trace_id(self) -> int:
        return 0xABC

    def generate_span_id(self) -> int:
        return 0x12


def test_trace_ids_are_zero_padded(output: io.StringIO) -> None:
    configure("info", "json", output)
    with TracerProvider(id_generator=SmallIds()).get_tracer("t").start_as_current_span("x"):
        logging.getLogger("t").info("inside")
    [entry] = records(output)
    assert entry["trace_id"] == "0" * 29 + "abc"
    assert entry["span_id"] == "0" * 14 + "12"


# --- exceptions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_exception_shows_type_and_frames_not_data(output: io.StringIO, fmt: str) -> None:
    configure("info", fmt, output)
    try:
        parse_subject()
    except ValueError:
        logging.getLogger("lateral.test").exception("check failed")
    text = output.getvalue()
    assert_no_data(text)
    assert len(lines(output)) == 1
    assert "ValueError" in text
    assert "parse_subject" in text
    assert "tests/unit/test_logs.py:" in text  # relative to the checkout, not an absolute path
    if fmt == "json":
        [entry] = records(output)
        assert entry["message"] == "check failed"
        assert entry["exc_type"] == "ValueError"
        frames = entry["frames"]
        assert isinstance(frames, list)
        assert re.fullmatch(r"tests/unit/test_logs\.py:\d+ in parse_subject", frames[0])
        assert " in test_exception_shows_type_and_frames_not_data" in frames[1]
    else:
        assert re.search(r"failed \[ValueError at tests/unit/test_logs\.py:\d+ in parse_subject < ", text)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_chained_exception_shows_both_types_not_data(output: io.StringIO, fmt: str) -> None:
    configure("info", fmt, output)
    try:
        handle_request()
    except LookupError:
        logging.getLogger("lateral.test").exception("check failed")
    text = output.getvalue()
    assert_no_data(text)
    assert "LookupError from ValueError" in text
    assert "handle_request" in text


def test_implicit_context_and_groups_are_named(output: io.StringIO) -> None:
    configure("info", "json", output)
    index: dict[str, str] = {}
    try:
        try:
            parse_subject()
        except ValueError:
            index["Zebedee Quuxworth"]  # a KeyError while handling the ValueError
    except KeyError:
        logging.getLogger("t").exception("lookup")
    try:
        raise ExceptionGroup("fan-out", [ValueError(DATA[0]), KeyError(DATA[2])])
    except ExceptionGroup as group:
        logging.getLogger("t").exception("fan-out failed: %s", group.exceptions[0])
    first, second = records(output)
    assert first["exc_type"] == "KeyError while handling ValueError"
    assert second["exc_type"] == "ExceptionGroup(ValueError, KeyError)"
    assert second["message"] == "fan-out failed: <ValueError>"
    assert_no_data(output.getvalue())


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_exception_text_in_the_message_is_replaced(output: io.StringIO, fmt: str) -> None:
    """grpc logs "Exception calling application: {exception}"; others pass the exception as an argument."""
    configure("info", fmt, output)
    log = logging.getLogger("grpc._server")
    earlier = KeyError(DATA[3])  # not part of the logged exception's chain
    try:
        parse_subject()
    except ValueError as error:
        log.exception("Exception calling application: %s", error)
        log.exception(f"Exception calling application: {error}")
        log.exception("failed: %r", error)
        log.exception(error)
        log.exception("failed after %s", earlier)
    assert_no_data(output.getvalue())
    assert len(lines(output)) == 5
    assert all("<ValueError>" in line for line in lines(output)[:4])
    assert "failed after <KeyError>" in lines(output)[4]


def test_asyncio_task_exception_never_retrieved(output: io.StringIO) -> None:
    """asyncio logs the task's repr, which holds the exception's repr, on lines after the first."""
    configure("info", "json", output)

    async def lookup() -> None:
        parse_subject()

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(lookup())
        await asyncio.sleep(0)
        assert task.done()
        del task  # collected unretrieved: asyncio logs it
        gc.collect()

    with asyncio.Runner() as runner:
        runner.run(main())
        gc.collect()
    [entry] = records(output)
    assert entry["logger"] == "asyncio"
    assert entry["message"] == "Task exception was never retrieved"
    assert entry["exc_type"] == "ValueError"
    assert_no_data(output.getvalue())


def test_traceback_in_the_message_is_cut(output: io.StringIO) -> None:
    configure("info", "text", output)
    try:
        parse_subject()
    except ValueError as error:
        formatted = traceback.format_exception(error)
        logging.getLogger("t").exception("unprintable: %s", "".join(formatted))
        logging.getLogger("t").exception(formatted)  # grpc logs the list itself
    assert_no_data(output.getvalue())
    assert "unprintable: [ValueError at" in lines(output)[0]


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_exc_text_cached_by_logging_formatter_is_never_used(formatter: logging.Formatter) -> None:
    try:
        parse_subject()
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.stack_info = 'Stack (most recent call last):\n  raise ValueError("Zebedee Quuxworth")'
    plain = logging.Formatter().format(record)  # caches the full traceback in record.exc_text
    assert record.exc_text is not None
    assert "Zebedee Quuxworth" in plain  # what would leak without lateral.logs
    first = formatter.format(record)
    second = formatter.format(record)
    assert_no_data(first + second)
    assert "ValueError" in first
    assert first == second
    assert record.exc_info is not None
    assert_no_data(formatter.formatException(record.exc_info) + formatter.formatStack(record.stack_info))


def test_stack_info_is_not_rendered(output: io.StringIO) -> None:
    configure("info", "text", output)
    # stack_info quotes this source line, data and all; it is left out.
    logging.getLogger("t").warning("look", stack_info=True, extra={"note": "Zebedee Quuxworth"})
    [line] = lines(output)
    assert "Quuxworth" not in line
    assert line.endswith("t: look")


# --- uncaught exceptions and the command line ---------------------------------------------------------------

CRASH = textwrap.dedent(
    """
    import threading
    from lateral.logs import configure, install_excepthooks
    configure("warning", "{fmt}")
    install_excepthooks()
    def worker():
        raise KeyError("NT1 4QT for Zebedee Quuxworth")
    thread = threading.Thread(target=worker, name="worker")
    thread.start()
    thread.join()
    class Holder:
        def __del__(self):
            raise LookupError("no record for Zebedee Quuxworth, NT1 4QT")
    Holder()
    def serve():
        raise ValueError("bad date 2011-02-29 for Zebedee Quuxworth, NHS 9434765919")
    serve()
    """
)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_uncaught_exceptions_are_logged_without_data(fmt: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CRASH.format(fmt=fmt)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.returncode == 1
    assert_no_data(result.stderr)
    assert "Traceback" not in result.stderr
    thread, ignored, main = result.stderr.splitlines()
    assert "CRITICAL" in thread
    assert "KeyError" in thread
    assert "in worker" in thread
    assert "uncaught exception in thread worker" in thread
    assert "Exception ignored in" in ignored
    assert "LookupError" in ignored
    assert "in Holder.__del__" in ignored
    assert "ValueError" in main
    assert "in serve" in main
    if fmt == "json":
        assert json.loads(main)["logger"] == "lateral"


CLI = textwrap.dedent(
    """
    import logging, sys
    from lateral.cli import main
    main(sys.argv[1:], standalone_mode=False)
    logging.getLogger("lateral.x").warning("after the command")
    raise ValueError("bad date 2011-02-29 for Zebedee Quuxworth")
    """
)


def run_cli(*args: str, env: dict[str, str], code: str = CLI) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "lateral", *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


def test_cli_log_format_from_option_and_environment() -> None:
    """The `lateral` group sets up logging (and the excepthooks) as --log-format or LATERAL_LOG_FORMAT say."""
    for args, env in [(("--log-format", "json"), {}), ((), {"LATERAL_LOG_FORMAT": "json"})]:
        result = run_cli(*args, "dsa", "--help", env=env)
        assert result.returncode == 1
        assert "Usage:" in result.stdout
        after, crash = (json.loads(line) for line in result.stderr.splitlines())
        assert after["message"] == "after the command"
        assert crash["level"] == "CRITICAL"
        assert crash["exc_type"] == "ValueError"
        assert_no_data(result.stderr)
    text = run_cli("--log-format", "text", "dsa", "--help", env={"LATERAL_LOG_FORMAT": "json"})
    assert re.search(r" WARNING lateral.x: after the command$", text.stderr.splitlines()[0])
    assert_no_data(text.stderr)


def test_cli_rejects_an_unknown_log_format() -> None:
    result = run_cli("dsa", "--help", env={"LATERAL_LOG_FORMAT": "bogus"}, code="")
    assert result.returncode == 2
    assert "--log-format" in result.stderr
    assert "'bogus' is not one of 'text', 'json'" in result.stderr
