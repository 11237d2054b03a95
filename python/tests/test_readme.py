"""The README's Python example runs and prints what the README says; python3 -m unio.bench runs
(briefly) and gives its JSON."""

import json
import os
import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _python_section():
    text = README.read_text()
    start = text.index("\n## Python\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_readme_example_runs_as_shown(tmp_path):
    section = _python_section()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"prints:\n\n```\n(.*?)```", section, re.S).group(1)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    got, want = r.stdout.splitlines(), shown.splitlines()
    assert got[:-1] == want[:-1]
    assert got[-1].split(":")[0] in ("io_uring", "threadpool", "linux_aio", "posix_aio", "sync")


def test_bench_runs_and_gives_json(tmp_path):
    cmd = [sys.executable, "-m", "unio.bench", "--json", "--seconds", "0.2", "--size", "4M", "--files", "20",
           "--tasks", "4", "--other-tasks", "4", "--loops", "default", "--dir", str(tmp_path)]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["meta"]["backend"]
    peers = {x["peer"] for x in out["results"]}
    assert {"unio", "to_thread", "blocking"} <= peers
    assert {x["workload"] for x in out["results"]} == {"cached", "cold", "files"}
    for x in out["results"]:
        assert x["ops"] > 0 and x["ops_per_s"] > 0 and x["cpu_us_per_op"] > 0
    assert "unio.bench: backend" in r.stderr  # the table goes to stderr with --json
