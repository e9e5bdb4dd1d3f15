"""The sdist and the wheel, as ``python -m build`` makes them, and the wheel on its own.

One build (without isolation: the dev extra brings ``build``, ``twine`` and the setuptools
that ``[build-system]`` asks for, so nothing is downloaded) serves every check: ``twine
check``, the distributions' contents and metadata, and the wheel installed alone into a
folder (``pip install --no-deps --target``; its dependencies are the venv's) running
``jaxal list`` through its console script and the README's quickstart, from a folder outside
the repository so that the source tree and the editable install cannot stand in for it.
"""

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
EXTRAS = {"cuda", "data", "peers", "docs", "dev", "notebook"}


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT))
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_twine_check_passes(dists):
    _run(sys.executable, "-m", "twine", "check", "--strict", *map(str, dists.values()))


def test_distributions_hold_the_package_data_and_one_version(dists):
    assert dists["wheel"].name == f"jaxal-{VERSION}-py3-none-any.whl"
    assert dists["sdist"].name == f"jaxal-{VERSION}.tar.gz"
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
        info = f"jaxal-{VERSION}.dist-info"
        metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    bundled = {p.relative_to(ROOT).as_posix() for p in (ROOT / "jaxal" / "_data").glob("*.npz")}
    assert bundled and bundled <= names
    assert {"jaxal/py.typed", "jaxal/cli.py", "jaxal/select/_top_k.py"} <= names
    assert not any(name.startswith(("tests/", "experiments/", "docs/")) for name in names)
    assert metadata["Version"] == VERSION
    assert set(metadata.get_all("Provides-Extra")) == EXTRAS
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert re.search(r"^jaxal = jaxal\.cli:app$", entry_points, re.M)
    with tarfile.open(dists["sdist"]) as sdist:
        members = {name.partition("/")[2] for name in sdist.getnames()}
    assert {"pyproject.toml", "README.md", *bundled} <= members


QUICKSTART = re.search(
    r"## Quickstart.*?```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S
).group(1)

FROM_THE_WHEEL = f"""
import os, sys
import jaxal, jaxal.cli
target = os.environ["PYTHONPATH"]
for module in (jaxal, jaxal.cli):
    assert module.__file__.startswith(target + os.sep), (module.__file__, target)
assert jaxal.__version__ == {VERSION!r}, jaxal.__version__
assert jaxal.bench.load_bundled() is not None  # the package data, read from the wheel's copy
{QUICKSTART}
import numpy as np
assert np.asarray(batch).shape == (10,) and not np.asarray(labelled)[np.asarray(batch)].any()
print("quickstart ok")
"""


def test_wheel_alone_runs_jaxal_list_and_the_quickstart(dists, tmp_path):
    target = tmp_path / "site"
    _run(
        sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
        "--target", str(target), str(dists["wheel"]),
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    cwd = tmp_path  # outside the repository: no source tree on sys.path
    # The console script and the quickstart run side by side (each mostly imports/compiles).
    script = [str(target / "bin" / "jaxal"), "list"]
    listing = subprocess.Popen(script, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    quickstart = _run(sys.executable, "-c", FROM_THE_WHEEL, cwd=cwd, env=env)
    stdout, _ = listing.communicate(timeout=300)
    assert listing.returncode == 0, stdout
    assert "quickstart ok" in quickstart.stdout
    for word in ("classification", "regression", "batchbald", "diabetes", "ensemble"):
        assert word in stdout, stdout
