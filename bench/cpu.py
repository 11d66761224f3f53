"""Where the machine's CPU went during a run: servers, PostgreSQL, wrk and everything else."""

from __future__ import annotations

import fcntl
import os
import re
import resource
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PG_AUX = re.compile(
    r"^postgres: [^:]+: (walwriter|checkpointer|background writer|autovacuum launcher|"
    r"logical replication launcher|stats collector|archiver|walsender|wal sender)"
)
# Processes may exit during a run (a PostgreSQL backend when its client disconnects,
# another user's short job): /proc is sampled this often so their CPU still counts.
SAMPLE_SECONDS = 0.5

Key = tuple[int, int]  # (pid, start time): a pid may be reused within a run

# Two benchmarks running at once each take half the machine: every number would be
# wrong. A benchmark run as `python -m bench.<name>` holds this lock for its lifetime
# and waits for one that is already running.
LOCK_PATH = Path("/tmp/partner-signals-bench-running.lock")
_lock_fd: int | None = None


def hold_bench_lock() -> None:
    global _lock_fd
    if _lock_fd is not None:
        return
    fd = os.open(LOCK_PATH, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another benchmark to finish ({LOCK_PATH})", file=sys.stderr)
        fcntl.flock(fd, fcntl.LOCK_EX)
    _lock_fd = fd


_main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
if _main_spec is not None and _main_spec.name.startswith("bench."):
    hold_bench_lock()


@dataclass(frozen=True)
class Proc:
    ppid: int
    ticks: int
    cmd: str


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, start time, utime + stime) of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12])


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def snapshot(known: dict[Key, Proc] | None = None) -> dict[Key, Proc]:
    """Every process now; command lines are read only for processes not in `known`."""
    procs: dict[Key, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _stat(pid)
        if stat is None:
            continue
        ppid, started, ticks = stat
        key = (pid, started)
        old = known.get(key) if known else None
        # A new PostgreSQL backend starts with the postmaster's command line and names
        # its database only once the connection is set up: read its title every time.
        cmd = old.cmd if old is not None and "postgres" not in old.cmd else _cmdline(pid)
        procs[key] = Proc(ppid, ticks, cmd)
    return procs


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Usage:
    """CPU seconds per group over a window of `seconds`, on `cpus` CPUs."""

    seconds: float
    cpus: int
    server: float
    postgres: float
    wrk: float
    other: float
    idle: float

    def share(self, value: float) -> float:
        """Percent of the whole machine (all CPUs) over the window."""
        return 100.0 * value / (self.seconds * self.cpus) if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"server {self.share(self.server):.0f}%, postgres {self.share(self.postgres):.0f}%, "
            f"wrk {self.share(self.wrk):.0f}%, other processes {self.share(self.other):.0f}%, "
            f"idle {self.share(self.idle):.0f}%"
        )


class Meter:
    """Measure CPU by group between start() and stop(), sampling /proc meanwhile."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._before: dict[Key, Proc] = {}
        self._seen: dict[Key, Proc] = {}
        self._machine = (0, 0)
        self._children = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._before = snapshot()
        self._seen = dict(self._before)
        self._machine = machine_ticks()
        self._children = _children_cpu()
        self._done.clear()
        self._thread = threading.Thread(target=self._sample, name="cpu-meter", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            self._seen.update(snapshot(self._seen))

    def stop(self, *, server_pid: int | None) -> Usage:
        """Call right after the load generator (our child) has exited and been reaped:
        its CPU is read from our children's resource usage, the rest from /proc."""
        load_generator = _children_cpu() - self._children
        self._done.set()
        if self._thread:
            self._thread.join()
        self._seen.update(snapshot(self._seen))
        busy1, total1 = machine_ticks()
        busy0, total0 = self._machine
        cpus = os.cpu_count() or 1
        children: dict[int, list[int]] = {}
        for (pid, _), proc in self._seen.items():
            children.setdefault(proc.ppid, []).append(pid)

        def tree(root: int | None) -> set[int]:
            found: set[int] = set()
            stack = [root] if root else []
            while stack:
                pid = stack.pop()
                found.add(pid)
                stack.extend(children.get(pid, []))
            return found

        server = tree(server_pid)
        # This process and the rest of its children (wrk, the ingest command): the load
        # generator, counted from resource usage above, not again here.
        mine = tree(os.getpid())
        groups = {"server": 0, "postgres": 0, "other": 0}
        for key, proc in self._seen.items():
            old = self._before.get(key)
            delta = proc.ticks - (old.ticks if old else 0)
            if delta <= 0:
                continue
            if key[0] in server:
                groups["server"] += delta
            elif key[0] in mine:
                continue
            elif proc.cmd.startswith("postgres:") and (
                f" {self.database} " in f"{proc.cmd} " or PG_AUX.match(proc.cmd)
            ):
                groups["postgres"] += delta
            elif proc.cmd:
                groups["other"] += delta
        window = (total1 - total0) / cpus / TICK
        idle = ((total1 - total0) - (busy1 - busy0)) / TICK
        return Usage(
            seconds=window,
            cpus=cpus,
            server=groups["server"] / TICK,
            postgres=groups["postgres"] / TICK,
            wrk=load_generator,
            other=groups["other"] / TICK,
            idle=idle,
        )


def busy_share(window: float = 1.0) -> float:
    """Percent of the machine busy over the next `window` seconds (this process is idle)."""
    busy0, total0 = machine_ticks()
    time.sleep(window)
    busy1, total1 = machine_ticks()
    return 100.0 * (busy1 - busy0) / max(total1 - total0, 1)


def settle(max_wait: float, threshold: float = 20.0) -> float:
    """Wait (at most `max_wait` s) for other work on the machine to drop under
    `threshold` percent busy; returns the last share seen."""
    deadline = time.monotonic() + max_wait
    share = busy_share()
    while share > threshold and time.monotonic() < deadline:
        share = busy_share()
    return share
