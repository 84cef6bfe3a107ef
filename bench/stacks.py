"""Summarize py-spy's collapsed stacks: where the sampled time goes, by function and by layer.

python bench/stacks.py bench/results/<run>-profile-1.txt [--top 30]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_SITE = re.compile(r".*/site-packages/")
_REPO = re.compile(r".*/(payportal|bench)/")

# the first frame (from the leaf up) that names one of these tells which layer the time is in
LAYERS = (
    ("psycopg (driver, network wait)", ("psycopg/",)),
    ("SQLAlchemy ORM", ("sqlalchemy/orm/",)),
    ("SQLAlchemy Core / engine / pool", ("sqlalchemy/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("zope.sqlalchemy / transaction", ("zope/sqlalchemy/", "transaction/")),
    ("JWT / hashing", ("jwt/", "hashlib", "hmac")),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
    ("waitress (HTTP server)", ("waitress/",)),
    ("WebOb", ("webob/",)),
    ("Pyramid (routing, views, security)", ("pyramid/", "pyramid_tm/", "pyramid_retry/")),
    ("payportal", ("payportal/",)),
)
# library entry points worth seeing beside payportal's own functions in the inclusive table
ENTRY_POINTS = (
    "Session.flush",
    "Session.commit",
    "Session.execute",
    "Session.close",
    "_ConnectionFairy._checkout",
    "register (zope/sqlalchemy",
    "decode (jwt/",
    "Logger.info",
    "tm_tween",
    "HTTPChannel.handle_read",
    "HTTPChannel.handle_write",
    "HTTPChannel.received",
    "Task.finish",
    "Task.write",
)


def noteworthy(frame: str) -> bool:
    return "(payportal/" in frame or any(point in frame for point in ENTRY_POINTS)


def short_frame(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = _REPO.sub(r"\1/", _SITE.sub("", match["file"]))
    return f"{match['function']} ({path})"


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append(([short_frame(f) for f in frames.split(";")], int(count)))
    return stacks


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in LAYERS:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def summarize(path: Path, top: int = 25) -> str:
    stacks = read_stacks(path)
    total = sum(count for _frames, count in stacks)
    if not total:
        return f"{path}: no samples"
    own: Counter = Counter()
    inclusive: Counter = Counter()
    layers: Counter = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        layers[layer_of(frames)] += count

    def table(title: str, counter: Counter) -> list[str]:
        rows = [f"  {title}"]
        for name, count in counter.most_common(top):
            rows.append(f"    {100 * count / total:5.1f} %  {name}")
        return rows

    lines = [f"{path.name}: {total} samples of the thread holding the GIL"]
    lines += table("by layer (leaf-most library frame)", layers)
    lines += table("self time (leaf function)", own)
    lines += table(
        "inclusive time of payportal's functions and key library entry points",
        Counter({name: n for name, n in inclusive.items() if noteworthy(name)}),
    )
    return "\n".join(lines)


def callees(path: Path, function: str, depth: int = 2, top: int = 30) -> str:
    """Where the time under `function` goes: its callees `depth` levels down, inclusive."""
    stacks = read_stacks(path)
    total = sum(count for _frames, count in stacks)
    under: Counter = Counter()
    within = 0
    for frames, count in stacks:
        hits = [i for i, frame in enumerate(frames) if function in frame]
        if not hits:
            continue
        within += count
        below = frames[hits[0] + 1 : hits[0] + 1 + depth]
        under[" > ".join(below) or "(itself)"] += count
    lines = [f"{function}: {100 * within / max(total, 1):.1f} % of all samples; below it:"]
    for name, count in under.most_common(top):
        lines.append(f"    {100 * count / max(total, 1):5.1f} %  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--under", help="break down the time below this function instead")
    parser.add_argument("--depth", type=int, default=1, help="levels below --under to group by")
    args = parser.parse_args(argv)
    if args.under:
        print(callees(args.stacks, args.under, args.depth, args.top))
    else:
        print(summarize(args.stacks, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
