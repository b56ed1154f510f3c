"""The README's Python examples run as written (so that they stay true)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # examples may write files
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["bgf"].log_likelihood_ == __import__("pytest").approx(-9582.4, abs=0.05)
    assert "hazard_ratio" in namespace["model"].summary
