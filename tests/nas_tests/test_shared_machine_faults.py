"""Faults of a shared machine, with real processes.

* Two drivers in two PID namespaces sharing /tmp, in a network namespace that has a second
  interface (10.77.0.2, a veth pair; nothing is ever sent to it): both studies complete, every
  socket of nas and Ray listens on loopback only, and a third driver (``--resume``) and
  ``nas delete`` of a running study are refused with one line naming the holder.
* A stale lease (another host, an old heartbeat) is taken over, with a warning; a fresh one is
  not, on SQLite and PostgreSQL.
* A full ``--ray-results`` disk (a 1 MiB tmpfs, filled): exit 2, one line, no study left.
* A PostgreSQL server stopped for 20 s in the middle of a run: the run completes, every point
  stored once; with a short retry window and the server gone for good: exit 2, one line, and
  the study resumes once the server is back.

These need root (network, PID and mount namespaces; a PostgreSQL server run as ``postgres``)
and are skipped without it.  Run them as the other runner tests are run, inside
``unshare -n bash .ci/in-netns.sh ...``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.storage import Storage
from tests.nas_tests._run_helpers import descendants, kill_pids, toy_sections, write_study
from tests.nas_tests._storage_helpers import storage_url_fixture

storage_url = storage_url_fixture

CLI = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())"]

root_only = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                               reason="needs root and unshare (namespaces)")


def _env(tmp: str, home: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, TMPDIR=tmp, HOME=str(home), RAY_USAGE_STATS_ENABLED="0",
                RAY_AUTH_MODE="disabled", **extra)


def _one_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("nas: error: "), err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


def _listeners(pid: int) -> set[str]:
    """``ADDR:PORT`` (hex) of the listening TCP sockets in the network namespace of ``pid``."""
    out = set()
    for name in ("tcp", "tcp6"):
        try:
            text = Path(f"/proc/{pid}/net/{name}").read_text()
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            f = line.split()
            if len(f) > 3 and f[3] == "0A":  # LISTEN
                out.add(f[1])
    return out


def _loopback(hex_addr: str) -> bool:
    if len(hex_addr) == 8:  # IPv4, little-endian
        return bytes.fromhex(hex_addr)[::-1][0] == 127
    raw = bytes.fromhex(hex_addr)  # IPv6: four little-endian 32-bit words
    addr = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return addr == bytes(15) + b"\x01" or (addr[:12] == bytes(10) + b"\xff\xff"
                                             and addr[12] == 127)


def _wait_trials(url: str, name: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Until study ``name`` has a trial row (its driver runs trials)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1].decode()
        with contextlib.suppress(Exception):  # the database is being created
            st = Storage(url)
            if name in st.study_names() and st.trials(st.get_study(name).id):
                return
        time.sleep(0.3)
    pytest.fail(f"study {name} started no trial in {timeout} s")


def _complete(url: str, name: str, n: int, epochs: int) -> None:
    """Study ``name`` is COMPLETE with ``n`` COMPLETE trials of ``epochs`` points each, once."""
    st = Storage(url)
    rec = st.get_study(name)
    assert rec.status == "COMPLETE"
    trials = st.trials(rec.id)
    assert [t.state for t in trials] == ["COMPLETE"] * n
    for t in trials:
        assert [p[0] for p in st.curve(t.id)] == list(range(1, epochs + 1))


# ----------------------------------------------------------------- shared machine
@root_only
def test_two_drivers_in_two_pid_namespaces_on_loopback_only(tmp_path: Path) -> None:
    short = tempfile.mkdtemp(prefix="nf-", dir="/tmp")  # the /tmp both drivers share
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    a = write_study(tmp_path / "a.toml", toy_sections("fa", trials=2, policy="none",
                                                      max_epochs=5, epoch_s=0.6, concurrency=1))
    b = write_study(tmp_path / "b.toml", toy_sections("fb", trials=1, policy="none",
                                                      max_epochs=2, epoch_s=0.1, concurrency=1))
    # a network namespace with a second interface and a default route through it (Ray would
    # find 10.77.0.2 as "its" address by asking how to reach 8.8.8.8: no packet is sent)
    net = subprocess.Popen(["unshare", "-n", "bash", "-c",
                            ("ip link set lo up && ip link add f0 type veth peer name f1 && "
                             "ip addr add 10.77.0.2/24 dev f0 && ip link set f0 up && "
                             "ip link set f1 up && ip route add default dev f0 && "
                             "exec sleep 600")])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 10
        while "10.77.0.2" not in Path(f"/proc/{net.pid}/net/fib_trie").read_text():
            assert net.poll() is None and time.monotonic() < deadline, "no test interface"
            time.sleep(0.1)

        def driver(*args: str) -> subprocess.Popen[bytes]:
            p = subprocess.Popen(["nsenter", "-t", str(net.pid), "-n", "unshare", "-p", "-f",
                                  "--mount-proc", *CLI, *args, "--storage", url, "--cpus", "1"],
                                 env=_env(short, tmp_path), cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(p)
            return p

        pa = driver("run", str(a), "--quiet")
        _wait_trials(url, "fa", pa)
        assert len(list(Path(short).glob("nas-ray-*/nas-driver"))) == 1
        pb = driver("run", str(b), "--quiet")

        # a third driver on the running study, and a delete of it: refused, nothing changed
        third = subprocess.run([*CLI, "run", str(a), "--resume", "--storage", url, "--quiet"],
                               env=_env(short, tmp_path), cwd=tmp_path, capture_output=True, check=False,
                               text=True, timeout=120)
        assert third.returncode == 2
        _one_line(third.stderr, "--resume refused", "'fa'", "in use by a running nas driver",
                  "heartbeat")
        gone = subprocess.run([*CLI, "delete", "fa", "--yes", "--storage", url],
                              env=_env(short, tmp_path), cwd=tmp_path, capture_output=True, check=False,
                              text=True, timeout=60)
        assert gone.returncode == 2
        _one_line(gone.stderr, "deleting study 'fa' refused", "in use by a running nas driver")

        seen: set[str] = set()
        while pa.poll() is None or pb.poll() is None:
            seen |= _listeners(net.pid)
            time.sleep(0.2)
        err_a, err_b = pa.communicate()[1].decode(), pb.communicate()[1].decode()
        assert pa.returncode == 0, err_a
        assert pb.returncode == 0, err_b
        assert len(seen) >= 3, seen  # Ray was up (GCS, raylet, workers) while we looked
        assert all(_loopback(h.split(":")[0]) for h in seen), \
            f"listening off loopback: {sorted(seen)}"
        for err in (err_a, err_b):
            assert "8.8.8.8" not in err and "external connectivity" not in err, err
            assert "left by the embedded Ray" not in err, err  # nobody reaped the other
        _complete(url, "fa", 2, 5)
        _complete(url, "fb", 1, 2)
        st = Storage(url)
        assert st.study_lease(st.get_study("fa").id) is None  # given back at the end
    finally:
        rest = [p for pr in procs for p in descendants(pr.pid)] + [pr.pid for pr in procs
                                                                   if pr.poll() is None]
        kill_pids(rest + [net.pid])
        net.wait(timeout=10)
        shutil.rmtree(short, ignore_errors=True)


# ----------------------------------------------------------------- lease take-over
def test_stale_lease_is_taken_over_and_a_live_one_is_not(storage_url: str, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    import datetime as dt

    from nas.errors import StudyLeasedError
    from nas.storage._lease import LeaseHolder
    from nas.storage._models import STUDY_LEASES, utcnow

    st = Storage(storage_url)
    sid = st.create_study("ls", space="s", task="t", objectives=[{"name": "v"}], config={})
    other = LeaseHolder("f" * 32, "someone", "another-host", 4242, "1", "b", "9")
    assert st.acquire_lease(sid, "ls", other) is None
    mine = LeaseHolder.this_process()
    with pytest.raises(StudyLeasedError, match=r"someone@another-host PID 4242, last heartbeat"):
        st.acquire_lease(sid, "ls", mine)
    with pytest.raises(StudyLeasedError, match="deleting study 'ls' refused"):
        st.delete_study("ls")
    with st.transaction("ageing the lease") as conn:  # its driver went silent 10 minutes ago
        conn.execute(STUDY_LEASES.update().values(
            heartbeat=utcnow() - dt.timedelta(minutes=10)))
    old = st.acquire_lease(sid, "ls", mine)
    assert old is not None and old.holder.token == other.token and old.age_s > 500
    assert not st.heartbeat_lease(sid, other.token)  # the old holder learns it lost it
    assert st.heartbeat_lease(sid, mine.token)
    lease = st.study_lease(sid)
    assert lease is not None and lease.holder == mine
    st.release_lease(sid, mine.token)
    assert st.study_lease(sid) is None
    # a lease whose holder is provably dead (this host, PID namespace and boot) goes at once
    dead = LeaseHolder("d" * 32, "me", socket.gethostname(), mine.pid, mine.pid_ns,
                       mine.boot_id, "1")  # start time 1: not this process
    assert st.acquire_lease(sid, "ls", dead) is None
    assert st.acquire_lease(sid, "ls", mine) is not None
    st.release_lease(sid, mine.token)
    st.delete_study("ls")
    assert "ls" not in st.study_names()


def test_resume_takes_over_a_stale_lease_and_says_so(tmp_path: Path) -> None:
    """The CLI end of it: a study with a trial left to run resumes; its stale lease (a driver
    on another host, silent for 10 minutes) is taken over with a warning."""
    import datetime as dt

    from nas.storage._lease import LeaseHolder
    from nas.storage._models import STUDY_LEASES, utcnow

    url = f"sqlite:///{tmp_path / 'nas.db'}"
    path = write_study(tmp_path / "s.toml", toy_sections("lt", trials=2, policy="none"))
    from nas.config import load_config
    from nas.runner._resume import stored_config

    st = Storage(url)
    sid = st.create_study("lt", space="nas.testing.toy:ToySpace", task="nas.testing.toy:ToyTask",
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                          config=stored_config(load_config(path)))
    tid = st.create_trial(sid, 0, config={}, distributions={})
    st.finish_trial(tid, state="COMPLETE", value=0.5, epochs=1)
    st.acquire_lease(sid, "lt", LeaseHolder("e" * 32, "someone", "elsewhere", 7, "1", "b", "2"))
    with st.transaction("ageing the lease") as conn:
        conn.execute(STUDY_LEASES.update().values(heartbeat=utcnow() - dt.timedelta(minutes=10)))
    res = subprocess.run([*CLI, "run", str(path), "--resume", "--storage", url, "--json"],
                         env=_env(str(tmp_path), tmp_path), cwd=tmp_path, capture_output=True, check=False,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "took over the lease of someone@elsewhere PID 7" in res.stderr
    assert "lease timed out" in res.stderr
    assert st.study_lease(sid) is None


# ----------------------------------------------------------------- full results disk
@root_only
def test_full_results_disk_is_one_line_and_leaves_no_study(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    path = write_study(tmp_path / "s.toml", toy_sections("fd", trials=2, policy="none"))
    cli = " ".join(f"'{c}'" for c in CLI)
    script = (f"mount -t tmpfs -o size=1m tmpfs {full} && "
              f"(dd if=/dev/zero of={full}/fill bs=64k >/dev/null 2>&1 || true) && "
              f"exec {cli} run {path} --storage {url} --quiet --ray-results {full}")
    res = subprocess.run(["unshare", "-m", "bash", "-c", script], env=_env("/tmp", tmp_path),
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2, res.stderr
    _one_line(res.stderr, f"--ray-results {full}", "Ray Tune keeps its per-trial files there")
    assert Storage(url).study_names() == []  # no study at all, let alone a COMPLETE one


# ----------------------------------------------------------------- PostgreSQL outage
class _Postgres:
    """A throwaway PostgreSQL server (as the postgres user, on 127.0.0.1 and a free port)."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins or os.geteuid() != 0 or not shutil.which("runuser"):
            pytest.skip(reason="needs root and the PostgreSQL server binaries")
        self.bin = bins[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="nf-pg-", dir="/tmp"))
        shutil.chown(self.dir, "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._pg("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        res = subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
                             capture_output=True, text=True, timeout=60, check=False)
        assert res.returncode == 0, f"{tool}: {res.stdout}{res.stderr}"

    def start(self) -> None:
        self._pg("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "-o",
                 f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")

    def close(self) -> None:
        pidfile = self.dir / "data" / "postmaster.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().split()[0])
            kill_pids([pid])
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[_Postgres]:
    pg = _Postgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.close()


def _points(url: str, name: str) -> dict[int, list[int]]:
    st = Storage(url)
    rec = st.get_study(name)
    from sqlalchemy import select

    from nas.storage._models import CURVE_POINTS, TRIALS

    out: dict[int, list[int]] = {}
    with st.engine.connect() as conn:
        q = select(TRIALS.c.number, CURVE_POINTS.c.step).join(
            CURVE_POINTS, CURVE_POINTS.c.trial_id == TRIALS.c.id).where(
            TRIALS.c.study_id == rec.id).order_by(TRIALS.c.number, CURVE_POINTS.c.step)
        for number, step in conn.execute(q):
            out.setdefault(int(number), []).append(int(step))
    return out


@root_only
def test_postgres_restart_mid_run_loses_and_duplicates_nothing(tmp_path: Path,
                                                               postgres: _Postgres) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections(
        "pg", trials=4, policy="none", max_epochs=8, epoch_s=0.4, concurrency=2))
    short = tempfile.mkdtemp(prefix="nf-", dir="/tmp")
    proc = subprocess.Popen([*CLI, "run", str(path), "--storage", postgres.url, "--json",
                             "--cpus", "2"], env=_env(short, tmp_path), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not _points_safe(postgres.url, "pg"):
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "no point stored in time"
            time.sleep(0.3)
        postgres.stop()
        time.sleep(20)  # the trials go on; the writer keeps their results and retries
        postgres.start()
        err = proc.communicate(timeout=240)[1].decode()
        assert proc.returncode == 0, err
        assert "unreachable" in err and "the study database is back" in err, err
        assert "ERROR" not in err, err
        st = Storage(postgres.url)
        rec = st.get_study("pg")
        assert rec.status == "COMPLETE"
        assert [t.state for t in st.trials(rec.id)] == ["COMPLETE"] * 4
        assert _points(postgres.url, "pg") == {n: list(range(1, 9)) for n in range(4)}
    finally:
        kill_pids(descendants(proc.pid) + ([proc.pid] if proc.poll() is None else []))
        shutil.rmtree(short, ignore_errors=True)


def _points_safe(url: str, name: str) -> bool:
    try:
        return bool(_points(url, name))
    except Exception:  # noqa: BLE001  (the study or schema is not there yet)
        return False


@root_only
def test_postgres_gone_for_good_is_one_line_and_resumable(tmp_path: Path,
                                                          postgres: _Postgres) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections(
        "pgx", trials=2, policy="none", max_epochs=30, epoch_s=0.3, concurrency=1))
    short = tempfile.mkdtemp(prefix="nf-", dir="/tmp")
    env = _env(short, tmp_path, NAS_DB_RETRY_S="3")
    proc = subprocess.Popen([*CLI, "run", str(path), "--storage", postgres.url, "--quiet",
                             "--cpus", "1"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not _points_safe(postgres.url, "pgx"):
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "no point stored in time"
            time.sleep(0.3)
        postgres.stop()
        err = proc.communicate(timeout=120)[1].decode()
        assert proc.returncode == 2, err
        lines = [ln for ln in err.splitlines() if ln.strip() and "WARNING" not in ln]
        assert len(lines) == 1, err
        assert lines[0].startswith("nas: error: ") and "unreachable for 3 s" in lines[0], err
        assert "--resume" in lines[0]
        postgres.start()
        st = Storage(postgres.url)
        rec = st.get_study("pgx")
        assert rec.status == "RUNNING"  # not COMPLETE: `--resume` continues it
        assert "RUNNING" in {t.state for t in st.trials(rec.id)}  # resume re-runs those
        # the lease its driver could not give back: its process is gone, so a resume takes it
        # over at once (what `nas run --resume` does first; test_run_resume covers the rest)
        from nas.storage._lease import LeaseHolder

        old = st.acquire_lease(rec.id, "pgx", LeaseHolder.this_process())
        assert old is not None and old.holder.pid == proc.pid and old.dead()
    finally:
        kill_pids(descendants(proc.pid) + ([proc.pid] if proc.poll() is None else []))
        shutil.rmtree(short, ignore_errors=True)
