"""A benchmark federation on this machine: N adapters of S synthetic people each and a broker, every one its
own `lateral ... serve` process, with mutual TLS, the signed agreement enforced and audit logs on, exactly
as deployed (only the hosts are one).

Every adapter reads the same synthetic police database (a town in which the force knows three in four
people), under its own agency id: so N agencies of S people cost one town to generate. Towns are cached
between runs in the cache folder, by size.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import threading
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tomli_w
import tomlkit
from tomlkit.toml_document import TOMLDocument

from audit.keys import AuditSection
from bench.load import Figures, measure
from broker.limits import LimitsSection
from lateral.client import build_request
from lateral.demo.agreement import AGREEMENT_FILE, DEMO_CALLER, write_signed_agreement
from lateral.demo.auditing import prepare_audit
from lateral.demo.certificates import DemoPki, add_sections, issue_demo_certificates
from lateral.demo.federation import write_broker_config
from pki.tls import Tls
from policy.trust import PolicySection
from protos.lateral.v1 import broker_pb2

COVERAGE = 0.75
POSTGRES = os.environ.get("LATERAL_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_FOUR = ("police", "fire", "nhs", "socialcare")


def agency_ids(count: int) -> list[str]:
    """The agreement's four agencies, then police-2, fire-2, ... (held by the same parties)."""
    return [a if n < 4 else f"{a}-{n // 4 + 1}" for n in range(count) for a in [_FOUR[n % 4]]]


@dataclass(frozen=True)
class Town:
    """A synthetic police database of about `people` records, and checks to ask about them."""

    people: int
    database: Path
    requests: list[broker_pb2.CheckRequest]


def make_town(cache: Path, people: int) -> Town:
    """The town for this size, generated once and kept in cache."""
    folder = cache / f"town-{people}"
    database, saved = folder / "police.db", folder / "requests.pickle"
    if not saved.exists():
        from synth import SynthConfig, generate, make_queries
        from synth.config import police_knowing
        from synth.output import write_databases

        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating a town for {people:,} police records...", file=sys.stderr, flush=True)
        data = generate(
            SynthConfig(people=int(people / COVERAGE), seed=31, coverage=police_knowing(COVERAGE))
        )
        database.unlink(missing_ok=True)
        write_databases(data, {"police": f"sqlite:///{database}"})
        queries = make_queries(data, "police", 500, seed=7)
        requests = [
            build_request(
                given_names=q.given_name.split(),
                family_name=q.family_name,
                date_of_birth=q.date_of_birth,
                gender=q.gender,
                postcode=q.postcode,
                address=q.address,
                purpose=_purpose(q.date_of_birth),
                justification="Benchmark referral",
                case_ref="BENCH-1",
            ).SerializeToString()
            for q in queries
            if q.date_of_birth
        ]
        saved.write_bytes(pickle.dumps(requests))
    raw: list[bytes] = pickle.loads(saved.read_bytes())  # noqa: S301 - our own cache file
    return Town(people, database, [broker_pb2.CheckRequest.FromString(r) for r in raw])


def _purpose(date_of_birth: str) -> str:
    import datetime as dt

    from policy.engine import subject_kind

    child = subject_kind(date_of_birth, dt.date.today()) == "child"
    return "child-safeguarding" if child else "adult-safeguarding"


def _with_agencies(extra: Sequence[str]) -> Any:
    """An amendment of the agreement: the extra agencies held by the parties of their namesakes, and asked
    under P1 and P2 like the four."""

    def amend(document: TOMLDocument) -> None:
        parties: Any = document["parties"]
        for agency in extra:
            base = agency.rsplit("-", 1)[0]
            holder = next(p for p in parties if base in p.get("agencies", []))
            holder["agencies"].append(agency)
        permissions: Any = document["permissions"]
        for permission in permissions:
            if permission["id"] in ("P1", "P2"):
                permission["agencies"].extend(extra)

    return amend


class _Process:
    """A `lateral ... serve` process; ready() waits for its " listening on " line."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(  # noqa: S603 - our own command line
            [sys.executable, "-m", "lateral", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.port = 0

    async def ready(self, timeout: float = 900) -> int:
        """Waits for the listening line. A thread of its own reads stderr to the end (so the process never
        blocks on a full pipe): never the event loop's executor, whose few threads a federation of 16 such
        readers would take up for good."""
        assert self.proc.stderr is not None
        stream = self.proc.stderr
        loop = asyncio.get_running_loop()
        listening: asyncio.Future[int] = loop.create_future()

        def tell(port: int) -> None:
            if not listening.done():
                listening.set_result(port)

        def read() -> None:
            told = False
            for line in stream:
                if not told and " listening on " in line:
                    loop.call_soon_threadsafe(tell, int(line.rsplit(":", 1)[1].split()[0]))
                    told = True
            if not told:
                loop.call_soon_threadsafe(tell, 0)

        threading.Thread(target=read, daemon=True, name="stderr").start()
        self.port = await asyncio.wait_for(listening, timeout)
        if not self.port:
            raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.wait()}")
        return self.port

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL: no graceful stop, as when a machine or the process dies."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Federation:
    """Running adapter and broker processes; stop() ends them."""

    folder: Path
    pki: DemoPki
    broker: _Process | None = None
    adapters: list[_Process] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    # The agencies of `adapters`, in the same order (empty when the adapters are not this federation's).
    agencies: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        assert self.broker is not None
        return f"127.0.0.1:{self.broker.port}"

    @property
    def broker_pid(self) -> int:
        assert self.broker is not None
        return self.broker.proc.pid

    def client_tls(self) -> Tls:
        return Tls(self.pki.client_tls(DEMO_CALLER.organisation))

    async def measure(
        self,
        requests: Sequence[broker_pb2.CheckRequest],
        *,
        sequential: int,
        concurrent: int,
        adapter_pids: Sequence[int] | None = None,
    ) -> Figures:
        """bench.load.measure as the demo's case system, with the broker's CPU and (unless other adapters
        are named) this federation's adapters' CPU."""
        return await measure(
            self.address,
            requests,
            DEMO_CALLER,
            self.client_tls(),
            broker_pid=self.broker_pid,
            sequential=sequential,
            concurrent=concurrent,
            adapter_pids=[a.proc.pid for a in self.adapters] if adapter_pids is None else adapter_pids,
        )

    def adapter_pid(self, agency: str) -> int:
        return self.adapters[self.agencies.index(agency)].proc.pid

    async def restart(self, agency: str, *, kill: bool = False) -> None:
        """Stops one adapter (SIGTERM and its graceful stop, or SIGKILL with `kill`) and starts it again with
        the same configuration on the same port, as the agency's admin would; returns once it listens. The
        broker keeps its channel to that address and has to reconnect on its own."""
        index = self.agencies.index(agency)
        old = self.adapters[index]
        await asyncio.to_thread(old.kill if kill else old.stop)
        args = [*old.args]
        if "--listen" in args:
            del args[args.index("--listen") : args.index("--listen") + 2]
        self.adapters[index] = _Process(*args, "--listen", f"127.0.0.1:{old.port}")
        await self.adapters[index].ready()

    def stop_processes(self) -> None:
        """Stops the broker, then the adapters, each gracefully; their audit logs stay for reading."""
        if self.broker is not None:
            self.broker.stop()
        for adapter in self.adapters:
            adapter.stop()

    def stop(self) -> None:
        """Stops every process and drops the federation's PostgreSQL databases."""
        self.stop_processes()
        for url in self.databases:
            drop_database(url)
        self.databases.clear()


def postgres_database() -> str:
    """A fresh, empty PostgreSQL database on the benchmark server ($LATERAL_BENCH_POSTGRES); its URL."""
    admin = sa.make_url(POSTGRES)
    name = f"lateral_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    target = sa.make_url(url)
    engine = sa.create_engine(sa.make_url(POSTGRES), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {target.database} WITH (FORCE)"))
    engine.dispose()


@dataclass(frozen=True)
class Files:
    """A benchmark federation's files: agreement, certificates, audit keys, adapter configurations."""

    folder: Path
    pki: DemoPki
    agencies: list[str]
    adapter_configs: list[Path]
    keys: tuple[str, ...]
    audit: dict[str, AuditSection]
    databases: list[str]


def write_files(folder: Path, town: Town, agencies: int, audit: str) -> Files:
    """Writes the agreement (amended for extra agencies, signed by every party), certificates, audit keys
    (logs on SQLite files or each in a fresh PostgreSQL database) and adapter configurations."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = agency_ids(agencies)
    write_signed_agreement(folder, amend=_with_agencies(ids[4:]))
    with open(folder / AGREEMENT_FILE, "rb") as handle:
        agreement = tomllib.load(handle)
    holders = {a: p["id"] for p in agreement["parties"] for a in p.get("agencies", []) if a in ids}
    keys = {p["id"]: p["signing_key"] for p in agreement["parties"]}
    pki = issue_demo_certificates(folder, holders)
    sections = prepare_audit(folder, ["broker", *ids])
    databases: list[str] = []
    if audit == "postgresql":
        for service, section in list(sections.items()):
            databases.append(postgres_database())
            sections[service] = section.model_copy(update={"url": databases[-1]})
    configs = []
    for agency in ids:
        configs.append(folder / f"{agency}.toml")
        _adapter_config(configs[-1], agency, town.database, pki, sections[agency], keys[holders[agency]])
    return Files(folder, pki, ids, configs, tuple(keys.values()), sections, databases)


# The broker's sections for measuring capacity: no load shedding, so that a closed loop of callers is never
# refused (bench/overload.py measures shedding itself).
NO_SHEDDING: dict[str, Any] = {"resilience": {"overload": {"adaptive": False, "max_in_flight": 100_000}}}


async def start(
    files: Files,
    broker_args: Sequence[str] = (),
    adapters: Sequence[str] | None = None,
    broker_sections: dict[str, Any] | None = None,
) -> Federation:
    """Starts the adapters (building their indexes in parallel), then the broker over them (`broker_args`,
    e.g. ["--workers", "2"], are added to its command line). Given `adapters` (addresses of adapters
    already serving, such as bare ones, one per agency), starts only the broker, over those.
    `broker_sections` go into the broker's configuration (e.g. NO_SHEDDING)."""
    federation = Federation(files.folder, files.pki, databases=list(files.databases))
    try:
        if adapters is None:
            federation.agencies = list(files.agencies)
            for path in files.adapter_configs:
                federation.adapters.append(_Process("adapter", "serve", "--config", str(path)))
            ports = await asyncio.gather(*(a.ready() for a in federation.adapters))
            adapters = [f"127.0.0.1:{port}" for port in ports]
        broker_path = files.folder / "broker.toml"
        await asyncio.to_thread(
            write_broker_config,
            broker_path,
            {a: (a, address) for a, address in zip(files.agencies, adapters, strict=True)},
            "127.0.0.1:0",
            files.pki.broker_tls,
            files.audit["broker"],
            files.keys,
            LimitsSection(per_user_per_minute=100_000, per_organisation_per_minute=1_000_000),
        )
        await asyncio.to_thread(_amend_broker, broker_path, broker_sections or {})
        federation.broker = _Process("broker", "serve", "--config", str(broker_path), *broker_args)
        await federation.broker.ready()
    except BaseException:
        federation.stop()
        raise
    return federation


def _adapter_config(
    path: Path, agency: str, database: Path, pki: DemoPki, audit: AuditSection, key: str
) -> None:
    from adapters.presets import PRESETS

    PRESETS["police"].write_config(path, url=f"sqlite:///{database}", listen="127.0.0.1:0")
    document = tomlkit.parse(path.read_text())
    header: Any = document["agency"]
    header["id"], header["name"] = agency, f"Benchmark agency {agency}"
    path.write_text(tomlkit.dumps(document))
    policy = PolicySection(agreement=str(path.parent / AGREEMENT_FILE), trusted_keys=(key,))
    add_sections(path, tls=pki.adapter_tls(agency), audit=audit, policy=policy)


def _amend_broker(path: Path, sections: dict[str, Any]) -> None:
    """No REST API; `sections` added to (or replacing) the broker configuration's."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    data.pop("rest", None)
    data.update(sections)
    path.write_text(tomli_w.dumps(data))
