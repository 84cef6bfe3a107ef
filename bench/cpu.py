"""CPU accounting over one load (Linux /proc): the server's and PostgreSQL's CPU per request, and
how much of the machine other processes took meanwhile (the 2 cores are shared)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, with_reaped_children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its children it has waited for)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rpartition(")")[2].split()
    # fields[0] is the state (field 3 of stat): utime, stime, cutime, cstime are 14-17
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def _children_by_parent() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(text.rpartition(")")[2].split()[1])
        found.setdefault(parent, []).append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (a server's worker processes), alive now."""
    by_parent = _children_by_parent()
    found, todo = [], list(by_parent.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(by_parent.get(child, []))
    return found


def tree_cpu(pid: int) -> float:
    """A server process with its worker processes: their CPU seconds, the reaped ones' (a
    worker that died and was replaced) included."""
    return process_cpu(pid, with_reaped_children=True) + sum(
        process_cpu(child, with_reaped_children=True) for child in descendants(pid)
    )


def postgres_cpu(postmaster_pid: int) -> float:
    """The postmaster with every backend it has reaped, plus the backends alive now."""
    total = process_cpu(postmaster_pid, with_reaped_children=True)
    for backend in _children_by_parent().get(postmaster_pid, []):
        total += process_cpu(backend)
    return total


def machine_busy() -> float:
    """CPU seconds all cores have spent on anything but idle and iowait since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS


def wait_for_quiet(limit: float, share: float = 0.15, sample: float = 1.0) -> float:
    """Wait (up to `limit` s) until the cores are busy under `share` over a `sample`-second
    window, since nothing of this run is loading them between loads; returns the last share."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + limit
    while True:
        before = machine_busy()
        time.sleep(sample)
        busy = (machine_busy() - before) / (sample * cores)
        if busy < share or time.monotonic() >= deadline:
            return busy


def own_cpu() -> float:
    """This process and its finished children (the load generator, pgbench)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class CpuUse:
    seconds: float
    server: float
    database: float | None
    harness: float
    others: float

    def per_request_ms(self, requests: int) -> tuple[float | None, float | None]:
        if not requests:
            return None, None
        db = None if self.database is None else 1000 * self.database / requests
        return 1000 * self.server / requests, db

    @property
    def others_share(self) -> float:
        """Share of the machine's cores that other processes used during the load."""
        cores = os.cpu_count() or 1
        return max(0.0, self.others) / (self.seconds * cores) if self.seconds else 0.0


class CpuMeter:
    """Snapshot before a load, CpuUse after it. The server's CPU is its whole process tree's:
    the supervisor and every worker process."""

    def __init__(self, server_pid: int, postmaster_pid: int | None):
        self.server_pid = server_pid
        self.postmaster_pid = postmaster_pid
        self._start = self._snapshot()

    def _snapshot(self) -> tuple[float, ...]:
        db = postgres_cpu(self.postmaster_pid) if self.postmaster_pid else 0.0
        server = tree_cpu(self.server_pid)
        return (time.perf_counter(), server, db, own_cpu(), machine_busy())

    def stop(self) -> CpuUse:
        end = self._snapshot()
        wall, server, db, harness, busy = (b - a for a, b in zip(self._start, end, strict=True))
        database = db if self.postmaster_pid else None
        others = busy - server - (database or 0.0) - harness
        return CpuUse(wall, server, database, harness, others)
