"""The output folder: only the tool's own files are replaced, inputs and foreign files are
refused before the work, and at every instant the folder holds complete old or complete new
results (real processes killed with SIGKILL at several points; failures injected into the
final exchange)."""
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import clvtools
from clvtools.cli import main
from clvtools.errors import ClvInputError
from clvtools.report import output_folder
from clvtools.report.output_folder import OWNERSHIP_FILE
from clvtools.report.outputs import write_folder

NAMES = [f"f{i}.csv" for i in range(6)] + ["models/m.json"]


def _files(tag: str) -> dict:
    return {name: (lambda name=name: f"{tag} {name}\n") for name in NAMES}


def _state(folder: Path) -> str:
    """'old' or 'new' when ``folder`` holds the complete results of that run; fails otherwise."""
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert present == sorted([*NAMES, OWNERSHIP_FILE]), present
    tags = {(folder / n).read_text().split()[0] for n in NAMES}
    assert len(tags) == 1 and tags <= {"old", "new"}, tags
    assert json.loads((folder / OWNERSHIP_FILE).read_text())["files"] == sorted(NAMES)
    return tags.pop()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


@pytest.fixture
def old(tmp_path) -> Path:
    out = tmp_path / "out"
    write_folder(_files("old"), out, marker="f0.csv")
    assert _state(out) == "old"
    return out


def test_a_folder_with_files_the_tool_did_not_write_is_refused_and_left_alone(old):
    (old / "my notes.txt").write_text("mine")
    (old / "models" / "extra.json").write_text("{}")
    with pytest.raises(ClvInputError, match=r"did not write: models/extra.json, my notes.txt"):
        write_folder(_files("new"), old, marker="f0.csv")
    assert (old / "my notes.txt").read_text() == "mine" and (old / "models/extra.json").exists()
    (old / "my notes.txt").unlink()
    (old / "models" / "extra.json").unlink()
    assert _state(old) == "old" and _leftovers(old) == []


def test_a_folder_that_is_no_output_a_file_or_an_input_is_refused(tmp_path, old):
    other = tmp_path / "documents"
    other.mkdir()
    (other / "f0.csv").write_text("x")   # a manifest name, but no ownership file, no marker
    with pytest.raises(ClvInputError, match="not a clvtools output"):
        write_folder({"f1.csv": lambda: "x"}, other, marker="data_quality.json")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ClvInputError, match="is a file"):
        write_folder(_files("new"), tmp_path / "file", marker="f0.csv")
    with pytest.raises(ClvInputError, match=r"holds an input of this run"):
        write_folder(_files("new"), old, marker="f0.csv", inputs=[None, [str(old / "f1.csv")]])
    with pytest.raises(ClvInputError, match=r"holds an input of this run"):
        write_folder(_files("new"), old, marker="f0.csv", inputs=[str(old / "*.csv")])
    assert _state(old) == "old"
    with pytest.raises(ClvInputError, match="cannot be written"):
        write_folder(_files("new"), tmp_path / "file" / "out", marker="f0.csv")


def test_only_the_tools_own_files_are_replaced(old):
    """A file the previous run wrote and this one does not is the tool's: it goes; a folder
    written before the ownership file existed is recognised by its marker and names."""
    os.remove(old / OWNERSHIP_FILE)
    new = {**_files("new"), "f5.csv": lambda: None}   # in the manifest, nothing this time
    write_folder(new, old, marker="f0.csv")   # legacy: no ownership file, names of the manifest
    assert not (old / "f5.csv").exists()
    assert json.loads((old / OWNERSHIP_FILE).read_text())["files"] == sorted(set(NAMES)
                                                                             - {"f5.csv"})


def test_a_dataset_folder_the_tool_wrote_is_its_own_and_replaced_whole(tmp_path):
    """A Spark run's customers.parquet is a folder of part files its writer names: recorded
    as one entry, everything in it is the tool's; a foreign file beside it still is not."""
    def dataset(path: Path) -> None:
        path.mkdir()
        for part in ("part-00000.parquet", "part-00001.parquet", "_SUCCESS"):
            (path / part).write_text(part)

    out = tmp_path / "out"
    files = {"data.parquet": lambda: dataset, "f0.csv": lambda: "x\n"}
    write_folder(files, out, marker="f0.csv")
    assert json.loads((out / OWNERSHIP_FILE).read_text())["files"] == ["data.parquet", "f0.csv"]
    write_folder(files, out, marker="f0.csv")          # the rerun replaces it
    assert sorted(p.name for p in (out / "data.parquet").iterdir()) == [
        "_SUCCESS", "part-00000.parquet", "part-00001.parquet"]
    (out / "mine.txt").write_text("mine")
    with pytest.raises(ClvInputError, match="did not write: mine.txt"):
        write_folder(files, out, marker="f0.csv")


def test_the_demo_folder_is_refused_as_the_output_of_its_own_rerun(tmp_path, capsys):
    """The command the demo suggests, with --out at the demo folder: refused before the work,
    demo_input kept."""
    demo = tmp_path / "demo"
    inputs = demo / "demo_input"
    inputs.mkdir(parents=True)
    (inputs / "transactions.csv").write_text("customer_id,date,amount\n1,2024-01-01,5\n"
                                             "1,2024-03-01,5\n2,2024-01-05,3\n")
    (demo / "data_quality.json").write_text("{}")
    (demo / OWNERSHIP_FILE).write_text(json.dumps(
        {"files": ["data_quality.json", "demo_input/transactions.csv"]}))
    code = main(["analyze", str(inputs / "transactions.csv"), "--out", str(demo)])
    err = capsys.readouterr().err
    assert code == 2 and "holds an input of this run" in err and "Traceback" not in err
    assert (inputs / "transactions.csv").read_text().startswith("customer_id")


def test_leftovers_of_killed_runs_are_removed_and_nothing_else(old):
    dead = old.parent / f".{old.name}.clvtools-{2**22 + 12345}-abcd1234"   # beyond pid_max
    dead.mkdir()
    (dead / "f0.csv").write_text("half")
    live = old.parent / f".{old.name}.clvtools-{os.getppid()}-abcd1234"
    live.mkdir()
    legacy = old.parent / f".{old.name}.old"
    legacy.mkdir()
    mine = old.parent / f".{old.name}.backup"
    mine.mkdir()
    write_folder(_files("new"), old, marker="f0.csv")
    assert _state(old) == "new"
    assert _leftovers(old) == sorted([live.name, mine.name])


def _fail_exchange(code):
    def exchange(_a, _b):
        raise OSError(code, os.strerror(code))
    return exchange


def test_without_the_exchange_two_renames_replace_the_folder(old, monkeypatch):
    monkeypatch.setattr(output_folder, "exchange", _fail_exchange(errno.EINVAL))
    write_folder(_files("new"), old, marker="f0.csv")
    assert _state(old) == "new" and _leftovers(old) == []


def test_a_failed_exchange_leaves_the_previous_results_whole(old, monkeypatch):
    monkeypatch.setattr(output_folder, "exchange", _fail_exchange(errno.EIO))
    with pytest.raises(ClvInputError, match="previous content of the folder is unchanged"):
        write_folder(_files("new"), old, marker="f0.csv")
    assert _state(old) == "old" and _leftovers(old) == []


def test_a_failed_second_rename_of_the_fallback_puts_the_old_folder_back(old, monkeypatch):
    monkeypatch.setattr(output_folder, "exchange", _fail_exchange(errno.ENOSYS))
    rename = os.rename

    def failing(src, dst):
        if Path(dst) == old and (Path(src) / "f0.csv").read_text().startswith("new"):
            raise OSError(errno.EIO, "injected")
        rename(src, dst)

    monkeypatch.setattr(output_folder.os, "rename", failing)
    with pytest.raises(ClvInputError, match="unchanged"):
        write_folder(_files("new"), old, marker="f0.csv")
    monkeypatch.undo()
    assert _state(old) == "old" and _leftovers(old) == []


def test_the_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    output_folder.exchange(a, b)
    assert ((a / "x").read_text(), (b / "x").read_text()) == ("b", "a")
    with pytest.raises(OSError) as exc:
        output_folder.exchange(a, tmp_path / "missing")
    assert exc.value.errno == errno.ENOENT


#: A real writer in its own process; it prints each step so that the test kills it there.
#: The packages' __init__ files are skipped (they load the models: seconds per process).
CHILD = textwrap.dedent("""
    import os, sys, time, types
    root, out = sys.argv[1], sys.argv[2]
    for name in ("clvtools", "clvtools.report", "clvtools.data"):
        module = types.ModuleType(name)
        module.__path__ = [os.path.join(root, *name.split(".")[1:])]
        sys.modules[name] = module
    from clvtools.report import output_folder

    exchange = output_folder.exchange
    def announced_exchange(a, b):
        exchange(a, b)
        print("exchanged", flush=True)
        time.sleep(5)
    output_folder.exchange = announced_exchange

    def content(name):
        def make():
            print("writing " + name, flush=True)
            time.sleep(0.05)
            return "new " + name + "\\n"
        return make

    def write(name, content, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    names = sys.argv[3:]
    output_folder.write_folder({n: content(n) for n in names}, out, "f0.csv", write=write)
    print("done", flush=True)
""")


def _kill_at(out: Path, line: str) -> None:
    """Run the child writer into ``out`` and SIGKILL it as it prints ``line``."""
    root = Path(clvtools.__file__).parent
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(out), *NAMES],
                             stdout=subprocess.PIPE, text=True)
    try:
        for got in child.stdout:
            if got.strip() == line:
                child.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail(f"the writer ended without printing {line!r}")
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


@pytest.mark.parametrize("line, expected", [
    ("writing f0.csv", "old"),            # the first content
    ("writing f3.csv", "old"),            # half written
    ("writing models/m.json", "old"),     # the last content
    ("exchanged", "new"),                 # swapped, the previous results not yet removed
])
def test_a_run_killed_at_any_point_leaves_complete_old_or_new_results(old, line, expected):
    _kill_at(old, line)
    assert _state(old) == expected
    assert len(_leftovers(old)) == 1      # the killed run's working folder
    write_folder(_files("old"), old, marker="f0.csv")   # the next run removes it
    assert _state(old) == "old" and _leftovers(old) == []


def test_background_files_are_written_on_a_worker_thread_and_the_marker_after_them(old):
    import threading
    seen: dict[str, str] = {}
    worker_wrote = threading.Event()
    main = threading.current_thread().name

    def content(name: str):
        def make():
            seen[name] = threading.current_thread().name
            if name == "f3.csv":   # this thread's own: waits for the worker to write one
                assert worker_wrote.wait(timeout=30)
            if name == "f1.csv" and seen[name] != main:
                worker_wrote.set()
            if name == "f0.csv":   # the marker: every other file is already in the folder
                work = next(p for p in old.parent.iterdir() if p.name.startswith(".out."))
                assert all((work / n).is_file() for n in NAMES if n != "f0.csv")
            return f"new {name}\n"
        return make

    files = {name: content(name) for name in NAMES}
    write_folder(files, old, marker="f0.csv", background=["f0.csv", "f1.csv", "f2.csv"])
    assert _state(old) == "new"
    assert seen["f1.csv"].startswith("clvtools-write")
    assert seen["f2.csv"] in {seen["f1.csv"], main}   # whichever thread was free first
    assert seen["f3.csv"] == seen["f0.csv"] == main


def test_a_failure_on_the_worker_thread_leaves_the_previous_results_whole(old):
    def broken():
        raise OSError(errno.ENOSPC, "No space left on device")

    files = {**_files("new"), "f2.csv": broken}
    with pytest.raises(ClvInputError, match="No space left"):
        write_folder(files, old, marker="f0.csv", background=["f1.csv", "f2.csv"])
    assert _state(old) == "old" and _leftovers(old) == []
