"""`lateral broker serve --workers N`, the parts without processes or sockets: how a worker is started and
told it is one, the pauses before starting it again, notifications, exits, and what is refused up front."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.config import AgencyEndpoint, BrokerConfig, BrokerSection, RestSection
from lateral import logs
from lateral._workers import (
    describe_exit,
    parse_notification,
    pause,
    reuse_port_from_environment,
    split_listen,
    worker_command,
    worker_environment,
    worker_from_environment,
)
from lateral.cli import main
from lateral.config import ConfigError
from lateral.rpc import SERVER_OPTIONS, server_options
from lateral.workers import Plan
from policy.trust import PolicySection


def _config(rest: str | None = None) -> BrokerConfig:
    return BrokerConfig(
        broker=BrokerSection(listen="0.0.0.0:50051", shutdown_grace_s=7.5),
        rest=RestSection(listen=rest) if rest is not None else None,
        policy=PolicySection(agreement="dsa.toml"),
        agencies=[AgencyEndpoint(id="police", name="Police", address="10.0.0.1:50061")],
    )


def test_the_pause_before_starting_a_worker_again_doubles_from_1_to_30_seconds() -> None:
    assert [pause(n) for n in range(1, 9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert pause(0) == 1.0
    assert pause(10_000) == 30.0


def test_a_worker_is_a_single_process_broker_with_the_supervisors_options() -> None:
    command = worker_command(
        Path("/etc/lateral/broker.toml"),
        "0.0.0.0:50051",
        insecure_dev=False,
        log_level=None,
        log_format="json",
    )
    assert command == [
        sys.executable,
        "-m",
        "lateral",
        "--log-format",
        "json",
        "broker",
        "serve",
        "--config",
        "/etc/lateral/broker.toml",
        "--listen",
        "0.0.0.0:50051",
    ]
    plaintext = worker_command(
        Path("b.toml"), "127.0.0.1:4000", insecure_dev=True, log_level="debug", log_format="text"
    )
    assert plaintext[3:] == [
        "--log-level",
        "debug",
        "--log-format",
        "text",
        "broker",
        "serve",
        "--config",
        "b.toml",
        "--listen",
        "127.0.0.1:4000",
        "--insecure-dev",
    ]
    assert "--workers" not in plaintext


def test_a_workers_environment_says_who_it_is_where_to_notify_and_makes_it_its_own_instance() -> None:
    base = {"PATH": "/usr/bin", "NOTIFY_SOCKET": "/run/systemd/notify", "OTEL_RESOURCE_ATTRIBUTES": "a=b"}
    first = worker_environment(base, 1, "/tmp/x/worker-1.sock")
    second = worker_environment(base, 2, "/tmp/x/worker-2.sock")
    assert base["NOTIFY_SOCKET"] == "/run/systemd/notify", "the supervisor's own environment is unchanged"
    assert first["PATH"] == "/usr/bin"
    assert first["NOTIFY_SOCKET"] == "/tmp/x/worker-1.sock"
    assert (first["LATERAL_WORKER"], first["LATERAL_REUSE_PORT"]) == ("1", "1")
    assert worker_from_environment(first) == 1
    assert worker_from_environment(second) == 2
    assert reuse_port_from_environment(first)
    attributes = [
        dict(kv.split("=") for kv in e["OTEL_RESOURCE_ATTRIBUTES"].split(",")) for e in (first, second)
    ]
    assert attributes[0]["a"] == "b"
    assert attributes[0]["lateral.worker"] == "1"
    assert attributes[0]["service.instance.id"] != attributes[1]["service.instance.id"]


def test_without_a_supervisor_a_broker_is_no_worker_and_shares_no_port() -> None:
    assert worker_from_environment({}) is None
    assert worker_from_environment({"LATERAL_WORKER": "0"}) is None
    assert worker_from_environment({"LATERAL_WORKER": "one"}) is None
    assert not reuse_port_from_environment({})
    assert not reuse_port_from_environment({"LATERAL_REUSE_PORT": "0"})
    assert server_options() == SERVER_OPTIONS
    assert ("grpc.so_reuseport", 0) in server_options()
    shared = server_options(reuse_port=True)
    assert ("grpc.so_reuseport", 1) in shared
    assert ("grpc.so_reuseport", 0) not in shared
    assert SERVER_OPTIONS[0] == ("grpc.so_reuseport", 0), "the module's options are not changed"


def test_notifications_and_exits_read_as_the_supervisor_needs_them() -> None:
    assert parse_notification(b"READY=1\nSTATUS=serving on port 4000") == {
        "READY": "1",
        "STATUS": "serving on port 4000",
    }
    assert parse_notification(b"RELOADING=1\nMONOTONIC_USEC=12\nnonsense\n=x") == {
        "RELOADING": "1",
        "MONOTONIC_USEC": "12",
    }
    assert describe_exit(0) == "exit status 0"
    assert describe_exit(2) == "exit status 2"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"


def test_listen_addresses_are_host_and_port() -> None:
    assert split_listen("0.0.0.0:50051", "listen address") == ("0.0.0.0", 50051)
    assert split_listen("[::]:0", "listen address") == ("[::]", 0)
    for wrong in ("50051", ":50051", "host:", "host:99999", "host:port"):
        with pytest.raises(ConfigError) as error:
            split_listen(wrong, "[rest] listen")
        assert str(error.value) == f"[rest] listen {wrong!r}: give host:port, e.g. 0.0.0.0:50051"


def test_a_plan_takes_the_address_and_grace_period() -> None:
    plan = Plan.of(
        _config(rest="0.0.0.0:8443"),
        Path("broker.toml"),
        "127.0.0.1:0",
        workers=3,
        insecure_dev=False,
        log_level=None,
        log_format="json",
    )
    assert (plan.host, plan.port, plan.workers, plan.grace) == ("127.0.0.1", 0, 3, 7.5)


def test_several_workers_need_a_fixed_rest_port() -> None:
    with pytest.raises(ConfigError) as error:
        Plan.of(
            _config(rest="127.0.0.1:0"),
            Path("broker.toml"),
            "127.0.0.1:0",
            workers=2,
            insecure_dev=False,
            log_level=None,
            log_format="text",
        )
    assert str(error.value) == (
        "broker.toml: [rest] listen '127.0.0.1:0' picks a free port, a different one in each worker: give "
        "[rest] listen a fixed port to run several workers"
    )


def test_the_command_refuses_several_workers_with_a_rest_api_on_port_0_before_starting_any(
    tmp_path: Path,
) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(
        '[broker]\nlisten = "127.0.0.1:0"\n[rest]\nlisten = "127.0.0.1:0"\n[policy]\nagreement = "dsa.toml"\n'
        '[[agencies]]\nid = "police"\nname = "Police"\naddress = "127.0.0.1:1"\n'
    )
    result = CliRunner().invoke(main, ["broker", "serve", "--config", str(config), "--workers", "2"])
    assert result.exit_code == 2, result.output
    assert "give [rest] listen a fixed port to run several workers" in " ".join(result.output.split())


@pytest.fixture
def worker_2() -> Iterator[None]:
    logs.set_worker(2)
    yield
    logs.set_worker(None)


def test_a_workers_log_lines_name_it(worker_2: None) -> None:
    record = logging.LogRecord("broker.server", logging.INFO, __file__, 1, "check %s done", ("abc",), None)
    assert logs.TextFormatter().format(record).endswith("INFO broker.server: check abc done worker=2")
    assert json.loads(logs.JsonFormatter().format(record))["worker"] == 2
    logs.set_worker(None)
    assert "worker" not in json.loads(logs.JsonFormatter().format(record))
