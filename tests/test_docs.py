"""The repository explains itself: its documentation is current, complete and self-contained.

- No file cites a file outside the repository; every "docs/model.md §N" names a section of
  docs/model.md that exists.
- The example outputs of README.md and the docs in tests/doc_examples.EXAMPLE_FILES are what
  the commands print now (refresh with `python tests/doc_examples.py --update`).
- README's network and machine snippets load with the real loaders.
- `gridcost nets --show` / `machines --show` print the bundled files verbatim.
- `optimize` and `sweep` report the same efficiency limit by the same rule.
"""

from __future__ import annotations

import re
from pathlib import Path

import doc_examples
import pytest
import yaml
from cli_helpers import fail, run, run_json
from click.testing import CliRunner

from costmodel.cli import cli
from costmodel.inputs.loaders import bundled_folder, bundled_names, load_machine, load_network

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "docs" / "model.md"
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".json", ".csv", ".tex", ".cfg",
                 ".ini", ".sh", ""}
SKIPPED_FOLDERS = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".mypy_cache",
                   ".ruff_cache", ".pytest_cache", ".hypothesis"}
OUTSIDE = ("cost-" + "model.md", "../" + "shared", "/" + "work/")
"""Ways a file could point outside the repository (written split, so this file does not match)."""
CITATION = re.compile(r"docs/model\.md ((?:§\d+)(?:(?:–|-|, | and | or )§\d+)*)")


def repository_files() -> list[Path]:
    """Every text file of the repository (source, tests, docs, data), not caches or venvs."""
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIPPED_FOLDERS or any(p.endswith(".egg-info") for p in parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            files.append(path)
    return files


def model_sections() -> set[int]:
    """N of every "## §N …" heading of docs/model.md."""
    return {int(m) for m in re.findall(r"^## §(\d+) ", MODEL.read_text(encoding="utf-8"), re.M)}


# --------------------------------------------------------------------------- self-contained


def test_the_repository_has_text_files_to_check() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in repository_files()}
    assert {"README.md", "docs/model.md", "costmodel/engine/cost.py", "tests/reference.py",
            "machines/cori-knl.yaml", "networks/alexnet.yaml"} <= names


def test_no_file_cites_a_file_outside_the_repository() -> None:
    offenders = []
    for path in repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in OUTSIDE:
            if needle in text:
                line = text[:text.index(needle)].count("\n") + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {needle}")
    assert not offenders, "\n".join(offenders)


def test_model_md_has_the_ten_numbered_sections_in_order() -> None:
    headings = re.findall(r"^## §(\d+) (.+)$", MODEL.read_text(encoding="utf-8"), re.M)
    assert [int(n) for n, _ in headings] == list(range(1, 11))
    titles = dict((int(n), t) for n, t in headings)
    assert titles[4].startswith("Per-layer costs")
    assert titles[8] == "Scaling limit"
    assert titles[9].startswith("The paper's evaluation setup")


def test_every_model_md_citation_names_a_section_that_exists() -> None:
    sections = model_sections()
    cited: dict[int, int] = {}
    bad = []
    for path in repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITATION.finditer(text):
            for number in map(int, re.findall(r"§(\d+)", match.group(1))):
                cited[number] = cited.get(number, 0) + 1
                if number not in sections:
                    bad.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert not bad, "\n".join(bad)
    assert set(cited) == sections  # every section is cited somewhere, and the regex works


def test_model_md_refers_only_to_its_own_sections() -> None:
    text = MODEL.read_text(encoding="utf-8")
    assert {int(n) for n in re.findall(r"§(\d+)", text)} <= model_sections()


@pytest.mark.parametrize("name", ["§4 in docs/model.md §4–§7", "x docs/model.md §6, §8 y"])
def test_the_citation_pattern_reads_ranges_and_lists(name: str) -> None:
    match = CITATION.search(name)
    assert match is not None
    assert len(re.findall(r"§\d+", match.group(1))) == 2


# --------------------------------------------------------------------------- examples current


EXAMPLES = [e for name in doc_examples.EXAMPLE_FILES
            for e in doc_examples.examples(ROOT / name)]


def test_the_documents_have_examples() -> None:
    files = {e.file for e in EXAMPLES}
    assert files == set(doc_examples.EXAMPLE_FILES)
    commands = {e.command.split()[1] for e in EXAMPLES}
    assert {"optimize", "layers"} <= commands


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.file}:{e.line}")
def test_example_output_is_current(example: doc_examples.Example) -> None:
    problem = doc_examples.stale(example)
    assert problem is None, (f"{problem}\n\nif the change is intended, run "
                             "`python tests/doc_examples.py --update` and review the diff")


@pytest.mark.parametrize(("shown", "produced", "same"), [
    ("  1  512   22.36", "1 512 22.36", True),            # white space does not matter
    ("total 26.74 s", "total 26.75 s", True),             # a last digit rounding the other way
    ("total 26.74 s", "total 26.94 s", False),            # a real change
    ("P=2,048 and 1.0547e+08", "P=2,048 and 1.0548e+08", True),
    ("efficiency < 0.5", "efficiency T(1)/(P·T(P)) < 0.5", False),
])
def test_lines_are_compared_robustly(shown: str, produced: str, same: bool) -> None:
    assert doc_examples.same_line(shown, produced) is same


def test_an_abridged_example_matches_with_ellipses() -> None:
    produced = ["title", "a 1", "b 2", "c 3", "d 4", "end"]
    assert doc_examples.align(["title", "…", "c 3", "…"], produced) is not None
    assert doc_examples.align(["title", "a 1", "…", "end"], produced) is not None
    assert doc_examples.align(["title", "a … 1", "…"], produced) is not None
    assert doc_examples.align(["title", "…", "c 3"], produced) is None  # more output follows
    assert doc_examples.align(["title", "c 3", "…"], produced) is None  # a line is missing


# --------------------------------------------------------------------------- README snippets


def readme_yaml_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```yaml\n(.*?)^```$", readme, re.M | re.S)


def test_readme_network_and_machine_are_the_example_files() -> None:
    """README's two snippets are the files its example command reads (tests/data/docs/)."""
    blocks = readme_yaml_blocks()
    assert len(blocks) == 2
    assert blocks[0] == (doc_examples.WORKDIR / "my-net.yaml").read_text(encoding="utf-8")
    assert blocks[1] == (doc_examples.WORKDIR / "my-cluster.yaml").read_text(encoding="utf-8")


def test_readme_network_and_machine_load_with_the_real_loaders() -> None:
    network = load_network(str(doc_examples.WORKDIR / "my-net.yaml"))
    assert [layer.name for layer in network.layers] == ["conv1", "conv2", "fc1", "fc2"]
    assert network.dataset_samples == 50_000
    # 3·3·3·64 + 64; 3·3·64·128 + 128; 8·8·128·1024 + 1024; 1024·10 + 10
    assert network.params == 1_792 + 73_856 + 8_389_632 + 10_250
    machine = load_machine(str(doc_examples.WORKDIR / "my-cluster.yaml"))
    assert machine.alpha_s == pytest.approx(10e-6)
    assert machine.bandwidth_Bps == pytest.approx(100e9 / 8)
    assert machine.flop_rate == pytest.approx(20e12)


# --------------------------------------------------------------------------- --show


@pytest.mark.parametrize(("command", "kind"), [("nets", "networks"), ("machines", "machines")])
def test_show_prints_every_bundled_file_verbatim(command: str, kind: str) -> None:
    names = bundled_names(kind)
    assert names
    for name in names:
        text = (bundled_folder(kind) / f"{name}.yaml").read_text(encoding="utf-8")
        assert run(command, "--show", name) == text
        assert run(command, "--show", f"{name}.yaml") == text
    assert "#" in run(command, "--show", names[0])  # comments included


def test_a_shown_file_is_a_starting_point_that_loads(tmp_path: Path) -> None:
    net, machine = tmp_path / "net.yaml", tmp_path / "machine.yaml"
    net.write_text(run("nets", "--show", "alexnet"), encoding="utf-8")
    machine.write_text(run("machines", "--show", "cori-knl"), encoding="utf-8")
    assert load_network(str(net)).params == 60_965_224
    assert yaml.safe_load(machine.read_text(encoding="utf-8"))["name"] == "cori-knl"
    assert load_machine(str(machine)).alpha_s == pytest.approx(2e-6)


@pytest.mark.parametrize(("command", "name", "expected"), [
    ("nets", "alexnt", "gridcost: unknown bundled network 'alexnt'; did you mean 'alexnet'"),
    ("machines", "cori", "gridcost: unknown bundled machine 'cori'; did you mean 'cori-knl'?"),
    ("nets", "../machines/cori-knl", "gridcost: unknown bundled network '../machines/cori-knl'"),
])
def test_show_of_an_unknown_name_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                                     command: str, name: str,
                                                     expected: str) -> None:
    assert fail(capsys, command, "--show", name).startswith(expected)


def test_show_is_in_the_help() -> None:
    for command in ("nets", "machines"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert "--show NAME" in result.output


# --------------------------------------------------------------------------- efficiency rule


def test_optimize_and_sweep_report_the_same_efficiency_limit_by_the_same_rule() -> None:
    limits = run_json("optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model")[
        "scaling_limit"]
    swept = ",".join(str(row["P"]) for row in limits["swept"])
    sweep = run_json("sweep", "--net", "alexnet", "--P", swept, "--plan", "fc-model")
    assert limits["efficiency_reference_P"] == sweep["efficiency_reference_P"] == 1
    assert limits["efficiency_below_threshold_P"] == sweep["efficiency_below_threshold_P"] == 64
    for a, b in zip(limits["swept"], sweep["rows"]):
        assert a["P"] == b["P"]
        assert a["efficiency"] == pytest.approx(b["efficiency"], rel=1e-12)
    line = "efficiency T(1)/(P·T(P)) < 0.5 from P=64"
    assert line in run("optimize", "--net", "alexnet", "--P", "512", "--plan", "fc-model")
    assert line in run("sweep", "--net", "alexnet", "--P", swept, "--plan", "fc-model")


def test_a_sweep_without_p_1_states_its_reference() -> None:
    text = run("sweep", "--net", "alexnet", "--P", "8..2048:x2", "--plan", "fc-model")
    assert "efficiency T(8)·8/(P·T(P)) < 0.5 from P=" in text
    record = run_json("sweep", "--net", "alexnet", "--P", "8..2048:x2", "--plan", "fc-model")
    assert record["efficiency_reference_P"] == 8
    assert record["rows"][0]["efficiency"] == 1.0
