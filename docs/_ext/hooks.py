"""MkDocs hooks: pages whose source lives outside ``docs/``, so each has one source.

* ``notebooks/*.ipynb``: rendered by mkdocs-jupyter as stored (never executed here; ``make
  test`` executes them);
* ``experiments/README.md`` (the reproductions) and ``benchmarks/README.md``, at the same
  relative paths as in the repository, so the links between them resolve.
"""

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["experiments/README.md", "benchmarks/README.md"]


@event_priority(100)  # before mkdocs-jupyter's on_files, which converts the notebooks
def on_files(files: Files, config) -> Files:
    sources = [*PAGES, *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("notebooks/*.ipynb"))]
    for source in sorted(sources):
        files.append(
            File(
                source,
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
