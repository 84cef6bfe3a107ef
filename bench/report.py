"""The bench table: one row per measured scenario, its ratios to the floor and to pgbench, and the
issue's targets marked met or missed; written as text and as JSON under bench/results/."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import LoadResult


@dataclass
class Row:
    scenario: str
    label: str
    connections: int
    load: LoadResult | None = None
    rss_mib: float | None = None
    floor: tuple[str, float] | None = None  # (floor endpoint, its requests/s)
    pgbench: tuple[str, float] | None = None  # (pgbench script, its transactions/s)
    rate: float | None = None  # what the scenario counts per second, when not requests
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        if self.rate is not None:
            return self.rate
        return self.load.rps if self.load else 0.0

    def as_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "label": self.label,
            "connections": self.connections,
            "per_second": round(self.per_second, 1),
            "load": self.load.as_dict() if self.load else None,
            "rss_mib": round(self.rss_mib, 1) if self.rss_mib is not None else None,
            "floor": {"endpoint": self.floor[0], "rps": round(self.floor[1], 1)}
            if self.floor
            else None,
            "floor_ratio": round(self.per_second / self.floor[1], 3) if self.floor else None,
            "pgbench": {"script": self.pgbench[0], "tps": round(self.pgbench[1], 1)}
            if self.pgbench
            else None,
            "pgbench_ratio": round(self.per_second / self.pgbench[1], 3) if self.pgbench else None,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            **self.extra,
        }


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


BUSY_MACHINE = 0.15  # others took more than this share of the cores: figures are not clean


def render(rows: list[Row]) -> str:
    header = (
        f"{'scenario':<30} {'conn':>4} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'RSS MiB':>7} {'CPU ms/req app+db':>17} {'others':>6} {'vs floor':>15} "
        f"{'vs pgbench':>17}  target"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        load = row.load
        floor = f"{row.per_second / row.floor[1]:.0%} of {row.floor[1]:,.0f}" if row.floor else "-"
        pg = (
            f"{row.per_second / row.pgbench[1]:.1%} of {row.pgbench[1]:,.0f}"
            if row.pgbench
            else "-"
        )
        mark = {True: "met", False: "MISSED", None: ""}[row.met]
        cpu = "-"
        if load and load.server_cpu_ms is not None:
            cpu = f"{load.server_cpu_ms:.2f}+{_num(load.db_cpu_ms, 2)}"
        others = f"{load.others_share:.0%}" if load and load.others_share is not None else "-"
        lines.append(
            f"{row.scenario + ' ' + row.label:<30.30} {row.connections:>4} "
            f"{_num(row.per_second, 0):>7} {_num(load.p50_ms if load else None):>7} "
            f"{_num(load.p99_ms if load else None):>7} {load.errors if load else '-':>6} "
            f"{_num(row.rss_mib, 0):>7} {cpu:>17} {others:>6} {floor:>15} {pg:>17}  "
            f"{row.target} {mark}".rstrip()
        )
        if row.note:
            lines.append(f"{'':<6}{row.note}")
    busy = [r for r in rows if r.load and (r.load.others_share or 0) > BUSY_MACHINE]
    if busy:
        lines.append(
            f"\nWARNING: other processes took over {BUSY_MACHINE:.0%} of the cores during "
            f"{len(busy)} of these loads ({', '.join(r.scenario for r in busy)}): their rates "
            "are low by that much; CPU ms per request suffer far less. Rerun quieter (QUIET_WAIT)."
        )
    return "\n".join(lines)


def machine() -> dict:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import os

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_json(path: Path, meta: dict, rows: list[Row], extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "machine": machine(), "rows": [r.as_dict() for r in rows], **extra}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def markdown(document: dict) -> str:
    """A results JSON as the markdown table docs/performance.md shows."""
    lines = [
        "| scenario | conn | per s | p50 ms | p99 ms | errors | RSS MiB | CPU ms/req app + db "
        "| others | vs floor | vs pgbench | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in document["rows"]:
        load = row["load"] or {}
        cpu = "-"
        if load.get("server_cpu_ms") is not None:
            db = load.get("db_cpu_ms")
            cpu = f"{load['server_cpu_ms']:.2f} + {'-' if db is None else f'{db:.2f}'}"
        floor = f"{row['floor_ratio']:.0%} of {row['floor']['rps']:,.0f}" if row["floor"] else "-"
        pg = "-"
        if row["pgbench"]:
            pg = f"{row['pgbench_ratio']:.1%} of {row['pgbench']['tps']:,.0f}"
        others = f"{load['others_share']:.0%}" if load.get("others_share") is not None else "-"
        mark = {True: " ✓", False: " ✗", None: ""}[row["met"]]
        lines.append(
            f"| {row['scenario']} {row['label']} | {row['connections']} "
            f"| {row['per_second']:,.0f} | {_num(load.get('p50_ms'))} | {_num(load.get('p99_ms'))} "
            f"| {load.get('errors', '-')} | {_num(row['rss_mib'], 0)} | {cpu} | {others} "
            f"| {floor} | {pg} | {row['target']}{mark} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    # python bench/report.py bench/results/<run>.json: the run's table in markdown
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
