"""sd_notify: one datagram of KEY=VALUE lines to $NOTIFY_SOCKET, path or abstract; quiet outside systemd."""

from __future__ import annotations

import logging
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lateral import systemd


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket at a path in tmp_path, named by $NOTIFY_SOCKET as systemd would."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def nothing_more(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    return False


def test_ready_sends_one_datagram_to_a_path_socket(listener: socket.socket) -> None:
    assert systemd.ready("serving 4 agencies") is True
    assert received(listener) == ["READY=1", "STATUS=serving 4 agencies"]
    assert nothing_more(listener)


def test_notify_joins_assignments_with_newlines(listener: socket.socket) -> None:
    assert systemd.notify("STATUS=index built", "X_LATERAL_RECORDS=1000000") is True
    assert received(listener) == ["STATUS=index built", "X_LATERAL_RECORDS=1000000"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_an_abstract_socket_is_written_with_a_leading_at(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"lateral-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.stopping() is True
        assert received(sock) == ["STOPPING=1"]


def test_reloading_carries_the_monotonic_clock_in_microseconds(listener: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert systemd.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = received(listener)
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_a_newline_in_a_value_cannot_smuggle_another_assignment(listener: socket.socket) -> None:
    assert systemd.status("agreement refused\nREADY=1") is True
    assert received(listener) == ["STATUS=agreement refused READY=1"]


def test_without_notify_socket_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)

    def no_socket(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("a socket was opened without $NOTIFY_SOCKET")

    monkeypatch.setattr(socket, "socket", no_socket)
    assert systemd.ready("serving") is False
    assert systemd.reloading() is False
    assert systemd.stopping() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert systemd.notify("READY=1") is False


def test_a_socket_that_does_not_exist_is_a_warning_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "secret-looking-dir" / "gone.sock"
    monkeypatch.setenv("NOTIFY_SOCKET", str(missing))
    with caplog.at_level(logging.WARNING, logger="lateral.systemd"):
        assert systemd.ready("serving") is False
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "READY" in message
    assert "secret-looking-dir" not in message
    assert str(tmp_path) not in message


def test_a_socket_nobody_reads_any_more_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "closed.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))  # the file is left behind, no one is bound to it
    with caplog.at_level(logging.WARNING, logger="lateral.systemd"):
        assert systemd.stopping() is False
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert str(path) not in caplog.text


@pytest.mark.parametrize("value", ["relative/notify.sock", "vsock:2:1234", "@"])
def test_an_address_this_module_cannot_reach_is_a_warning(
    value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    with caplog.at_level(logging.WARNING, logger="lateral.systemd"):
        assert systemd.notify("READY=1") is False
    assert len(caplog.records) == 1
    assert value not in caplog.records[0].getMessage()


@pytest.mark.parametrize("bad", [(), ("READY",), ("=1",), ("RE ADY=1",)])
def test_what_is_not_an_assignment_is_a_programming_error(
    bad: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with pytest.raises(ValueError, match=r"nothing to send|not a KEY=VALUE"):
        systemd.notify(*bad)
