"""Write the results table of ``experiments/README.md`` from ``experiments/results/*.json``.

Each ``RUN.json`` in ``experiments/results/`` is one run of a script, either

* a full run's summary, written by the script's ``--record`` (:func:`_common.record_run`):
  its command line, setting, claims (each with the per-seed values, the paired-bootstrap
  interval of the difference and the verdict, :func:`_common.claim`) and wall time; or
* a placeholder for a run not yet made at 5 seeds: ``run``, ``script``, ``command``,
  ``setting``, ``status`` and ``previous``, the hand-written result of an earlier run,
  kept as a note. Its claims (texts and the paper's numbers) are the script's ``CLAIMS``.

One row per claim, runs in alphabetical order, between the README's
``<!-- results:start -->`` and ``<!-- results:end -->`` markers; the earlier runs' notes follow
the table. Nothing here holds a claim or a number: they live in the scripts and the records.

Run: ``python experiments/table.py`` rewrites the README; ``--check`` only compares it and
exits with status 1 when it is out of date (``tests/test_experiments.py`` runs that).
"""

import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

EXPERIMENTS = Path(__file__).parent
README = EXPERIMENTS / "README.md"
RESULTS = EXPERIMENTS / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"
EARLIER = (
    "Earlier runs, written by hand before the claims were tested (3 seeds unless stated; "
    "their verdicts are by eye, not by the test):"
)
COLUMNS = (
    "Script",
    "Claim",
    "Paper's number",
    "Ours (mean ± std over seeds)",
    "Paired 95% CI of the difference",
    "Verdict",
    "Runtime",
    "Command",
)


def script_claims(script: str) -> list[dict]:
    """The ``CLAIMS`` of ``experiments/SCRIPT``, as the records' ``claim``/``paper``/``metric``."""
    sys.path.insert(0, str(EXPERIMENTS))  # the scripts import their helpers as `_common`
    spec = importlib.util.spec_from_file_location(Path(script).stem, EXPERIMENTS / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [
        {"claim": c.text, "paper": c.paper, "metric": c.describe(), "margin": c.margin}
        for c in module.CLAIMS
    ]


def number(value: float, counts: bool) -> str:
    """No decimals for counts (labels, bits), 3 for rates and accuracies."""
    return f"{value:.0f}" if counts else f"{value:.3f}"


def signed(value: float, counts: bool) -> str:
    return f"{value:+.0f}" if counts else f"{value:+.3f}"


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def cells(run: dict, claim: dict, first: bool, note: int | None) -> list[str]:
    """The row of one claim of ``run`` (runtime and command on the run's first row only)."""
    within = f" within {claim['margin']:g}" if claim.get("margin") else ""
    row = [
        f"`{run['script']}` ({run['setting']})" if first else "″",
        f"{claim['claim']} ({claim['metric']}{within})",
        claim["paper"],
    ]
    if note is not None:
        status = run.get("status", "not run at 5 seeds yet")
        row += [f"{status} (earlier run: note {note})", "", "", ""]
    elif claim["verdict"] == "untested":
        row += [f"untested ({claim['reason']})", "", "untested"]
    else:
        better, worse = claim["better"], claim["worse"]
        mean, std, (low, high) = claim["mean"], claim["std"], claim["ci"]
        counts = max(abs(mean[better]), abs(mean[worse])) >= 10  # labels or bits, not rates

        def both(name: str) -> str:
            return f"{name} {number(mean[name], counts)} ± {number(std[name], counts)}"

        interval = f"[{signed(low, counts)}, {signed(high, counts)}]"
        row += [
            f"{both(better)}, {both(worse)}",
            f"{signed(claim['mean_diff'], counts)} {interval}, {claim['seeds']} seeds",
            claim["verdict"],
        ]
    if note is None:
        row += [duration(run["wall_time_s"]) if first else "″"]
    row += [f"`{run['command']}`" if first else "″"]
    return row


def render(results: Path = RESULTS) -> str:
    """The table (and the earlier runs' notes) for the runs in ``results``."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    notes = []
    for path in sorted(results.glob("*.json")):
        run = json.loads(path.read_text())
        note = None
        if "claims" in run:
            claims = run["claims"]
        else:
            claims = script_claims(run["script"])
            notes.append(f"{len(notes) + 1}. `{run['run']}`: {run['previous']}")
            note = len(notes)
        for i, claim in enumerate(claims):
            row = cells(run, claim, first=i == 0, note=note)
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    if notes:
        lines += ["", EARLIER, "", *notes]
    return "\n".join(lines)


def update(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"{README} must hold the markers {START} and {END} once each")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(
    check: Annotated[
        bool, typer.Option("--check", help="Only check that the README is up to date.")
    ] = False,
) -> None:
    text = README.read_text()
    new = update(text, render())
    if check:
        if new != text:
            typer.echo(f"{README} is out of date with {RESULTS}: run python experiments/table.py")
            raise typer.Exit(1)
        typer.echo(f"{README} is up to date")
    elif new != text:
        README.write_text(new)
        typer.echo(f"rewrote the results table of {README}")


if __name__ == "__main__":
    typer.run(main)
