"""Smoke test of experiments/demo.py at toy size."""

import importlib.util
import json
import sys
from pathlib import Path

DEMO = Path(__file__).parent.parent / "experiments" / "demo.py"
sys.path.insert(0, str(DEMO.parent))  # the demo imports its shared helpers as `_common`


def test_demo_writes_curves(tmp_path):
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.main(out=tmp_path, seeds=1, rounds=1, batch=5, initial=10, members=2, steps=5)
    record = json.loads((tmp_path / "curves.json").read_text())
    assert {"jaxal_version", "config", "labels", "accuracy"} <= record.keys()
    assert record["labels"] == [10, 15]
    assert set(record["accuracy"]) == set(demo.STRATEGIES)
    for curves in record["accuracy"].values():
        assert len(curves) == 1 and len(curves[0]) == 2
        assert all(0.0 <= a <= 1.0 for a in curves[0])
    assert (tmp_path / "curves.png").stat().st_size > 0
