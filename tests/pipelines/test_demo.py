"""The main job end to end: `interest demo` on a small budget, every real component."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_loop(state_dir: Path) -> None:
    from interest.cli import app

    args = ["demo", "--users", "700", "--days", "28", "--trials", "1", "--epochs", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.output
    print(out)  # the CI log shows the demo's story (-rP)
    for step in ("[1/9]", "[4/9]", "[9/9]", "Summary"):
        assert step in out
    assert "drift before the shift:" in out
    assert "monitor run after the shift" in out
    # The drift step fires on the injected interest shift and names it: an interest column
    # (the category-bucket shares, the top category, the per-user interest change) drives it.
    after = re.search(r"drift after the shift: (\w+); drivers: (.*)", out)
    assert after is not None and after.group(1) == "drift", out
    assert re.search(r"\b(bucket_shares|top_category|interest_shift)\b", after.group(2)), out
    assert (state_dir / "mlflow.db").is_file()
    assert list((state_dir / "predictions").glob("predictions-*.jsonl"))
    assert list((state_dir / "reports").glob("drift-*.html"))
    assert "bento:          interest-evolution:" in out
    # The promotion (if any) reached traffic: the service answers as the registry's champion.
    champion = re.search(r"champion:\s+v(\d+)", out).group(1)
    assert f"the service answers as v{champion} (is_champion: True)" in out
