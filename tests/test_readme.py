"""Every code block of README.md and of the guides in docs/ runs as written.

* ``python`` blocks: a page is a script, its blocks run top to bottom in one fresh
  interpreter (later blocks use what earlier ones defined), in a temporary folder, with
  jax's defaults (float32), as a reader would run them. Tracebacks point at the page's own
  line numbers. ``PAGE_CHECKS`` adds assertions on what a page computed.
* ``bash`` blocks: every ``jaxal ...`` command parses against the command line (its options
  and their values, without running it), every ``make X`` names a Makefile target and every
  ``python script.py --option`` names an existing script that defines the option.

``docs/index.md`` holds no code of its own: it includes the README's blocks (pymdownx.snippets
``--8<--`` lines), which run here as part of README.md.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from jaxal.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)

PAGE_CHECKS = {
    "README.md": """
assert batch.shape == (10,) and len(set(batch.tolist())) == 10
assert not labelled[batch].any()
assert (jax.numpy.diff(joint_mi) >= -1e-3).all()
accuracy = state.metrics["accuracy"]
assert accuracy.shape == (3, 11) and (accuracy[:, -1] > 0.8).all(), accuracy
assert os.path.isdir("results/my_run")
""",
    "docs/guides/loop.md": """
assert state.metrics["accuracy"].shape == (2, 3)
assert "epig-coreset" in jaxal.strategies.names(task="classification")
""",
    "docs/guides/batch-selection.md": """
assert batch.shape == (10,) and not labelled[batch].any()  # the kernel methods' batch
assert joint_epig.shape == joint_mi.shape == (5,) and (jax.numpy.diff(joint_mi) >= -1e-3).all()
""",
    "docs/guides/sharding.md": """
assert (batch == jaxal.select.top_k(jaxal.scores.bald(log_probs), 10)).all()
""",
}


def _blocks(page: Path, language: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of the page's fenced blocks in ``language``."""
    text = page.read_text()
    return [
        (text[: m.start(2)].count("\n") + 1, m[2]) for m in FENCE.finditer(text) if m[1] == language
    ]


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


PYTHON_PAGES = [page for page in PAGES if _blocks(page, "python")]


def test_every_page_is_checked():
    assert {_name(p) for p in PYTHON_PAGES} >= set(PAGE_CHECKS)
    assert "docs/guides/memory.md" in {_name(p) for p in PYTHON_PAGES}
    for page in PAGES:
        languages = {m[1] for m in FENCE.finditer(page.read_text())}
        assert languages <= {"python", "bash"}, (page, languages)  # no block goes untested
    index = (ROOT / "docs" / "index.md").read_text()
    for section in re.findall(r'^--8<-- "README.md:(\w+)"$', index, re.M):
        assert f"--8<-- [start:{section}]" in (ROOT / "README.md").read_text(), section


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_name)
def test_python_blocks_run(page, tmp_path):
    lines = [""] * (page.read_text().count("\n") + 1)
    for start, code in _blocks(page, "python"):
        for offset, line in enumerate(code.splitlines()):
            lines[start - 1 + offset] = line
    script = "\n".join(["import os", *lines[1:], PAGE_CHECKS.get(_name(page), "")])
    path = tmp_path / page.name
    path.write_text(script)
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{_name(page)}:\n{result.stdout}\n{result.stderr}"


def _commands(page: Path) -> list[list[str]]:
    commands = []
    for _, code in _blocks(page, "bash"):
        for line in code.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


BASH_PAGES = [page for page in PAGES if _blocks(page, "bash")]


@pytest.mark.parametrize("page", BASH_PAGES, ids=_name)
def test_shell_commands_are_valid(page):
    cli = typer.main.get_command(app)
    makefile = (ROOT / "Makefile").read_text()
    commands = _commands(page)
    assert commands
    for words in commands:
        program = words[0].removeprefix(".venv/bin/")
        if program == "jaxal":
            ctx = typer.Context(cli, info_name="jaxal")  # typer vendors its own click
            command = cli.get_command(ctx, words[1])
            assert command is not None, words
            command.make_context(words[1], words[2:], parent=ctx)  # parses, converts values
        elif program == "make":
            for target in words[1:]:
                assert re.search(rf"^{target}:", makefile, re.M), words
        elif program == "python":
            script = ROOT / words[1]
            assert script.is_file(), words
            source = script.read_text()
            for option in (w for w in words[2:] if w.startswith("--")):
                assert option[2:].replace("-", "_") in source, (words, option)
        else:
            raise AssertionError(f"{_name(page)}: no check for {words}")
