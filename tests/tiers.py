"""Split the suite into ``make test`` (fast) and ``make test-slow`` from measured durations.

The slowest tests, by measured time summed over their parametrisations (a notebook counts as
one), are listed in ``tests/slow.txt`` until the rest fit ``--budget`` seconds of test time;
``tests/conftest.py`` marks the listed ones ``slow``. ``make test`` runs the others (aim:
under 5 minutes on a quiet 2-core machine, lint and types included) and CI runs both tiers,
so every test still runs in CI. Regenerate after the suite changes::

    .venv/bin/pytest -n 2 -q --nbmake --doctest-modules --durations=0 tests notebooks jaxal \
        > durations.txt
    .venv/bin/python tests/tiers.py durations.txt --budget 330
"""

import argparse
import collections
import re
from pathlib import Path

SLOW = Path(__file__).with_name("slow.txt")
LINE = re.compile(r"^\s*([0-9.]+)s\s+(setup|call|teardown)\s+(\S+)")


def group_of(node_id: str) -> str:
    """``tests/test_x.py::test_y`` without parameters; a notebook's file."""
    base = node_id.split("[")[0]
    return base.split("::")[0] if base.split("::")[0].endswith(".ipynb") else base


def listed() -> set[str]:
    """The groups ``tests/slow.txt`` lists (comment lines start with ``#``)."""
    lines = (line.strip() for line in SLOW.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def totals(durations: str) -> dict[str, float]:
    """Seconds per group from ``pytest --durations=0`` output."""
    seconds: dict[str, float] = collections.defaultdict(float)
    for line in durations.splitlines():
        if match := LINE.match(line):
            seconds[group_of(match.group(3))] += float(match.group(1))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("durations", type=Path)
    parser.add_argument("--budget", type=float, default=330.0, help="fast tier, test-seconds")
    args = parser.parse_args()
    seconds = totals(args.durations.read_text())
    fast = sum(seconds.values())
    slow = []
    for group, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        if fast <= args.budget:
            break
        slow.append(group)
        fast -= spent
    header = (
        "# Tests `make test` leaves to `make test-slow` (both run in CI): written by\n"
        f"# tests/tiers.py from a --durations run; fast tier {fast:.0f} s of "
        f"{sum(seconds.values()):.0f} s measured.\n"
    )
    SLOW.write_text(header + "".join(f"{group}\n" for group in sorted(slow)))
    print(f"{len(slow)} groups slow, fast tier {fast:.0f} s of {sum(seconds.values()):.0f} s")


if __name__ == "__main__":
    main()
