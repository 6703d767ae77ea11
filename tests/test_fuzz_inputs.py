"""Fuzzing of every input file gridcost reads (docs/formats.md, "Limits and ranges").

Whatever the bytes, reading a network or machine file ends in a validated spec or in one
GridcostError of one bounded line — never another exception, a warning, a hang or a huge
allocation.  Hypothesis mutates the bundled files, builds random YAML trees and puts random
scalars into every numeric field; a few generated files go through the CLI end to end.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costmodel.errors import MAX_MESSAGE, GridcostError
from costmodel.inputs.loaders import (
    _parse,
    bundled_text,
    load_json,
    machine_from_document,
    network_from_document,
)
from costmodel.inputs.specs import (
    ALPHA_RANGE,
    BANDWIDTH_RANGE,
    EPOCH_TIME_RANGE,
    FLOP_RATE_RANGE,
    MAX_LAYER_VALUES,
    MAX_LAYERS,
    MAX_MACS,
    MAX_PARAMS,
    MAX_SAMPLES,
    MAX_SIZE,
    MEMORY_RANGE,
    WORD_BYTES_RANGE,
    Machine,
    Network,
)

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ["alexnet", "resnet18", "vgg16"]
MACHINES = ["cori-knl", "a100-ib-nodes", "ethernet-25g"]
TEXTS = {("networks", n): bundled_text("networks", n) for n in NETWORKS} | {
    ("machines", m): bundled_text("machines", m) for m in MACHINES}

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _load(text: str, kind: str) -> Network | Machine:
    doc = _parse(text, "f.yaml")
    return network_from_document(doc) if kind == "networks" else machine_from_document(doc)


def _duplicate_keys(text: str) -> bool:
    """Whether some mapping of a (small, shallow) YAML text gives a key twice."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return False
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            keys = [(k.tag, k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode)
                    and k.tag != "tag:yaml.org,2002:merge"]
            if len(keys) != len(set(keys)):
                return True
            todo += [v for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return False


def _in_range(spec: Network | Machine) -> None:
    """Every number of a loaded spec lies in its documented range (costmodel.inputs.specs)."""
    if isinstance(spec, Network):
        assert 1 <= len(spec.layers) <= MAX_LAYERS
        assert 1 <= spec.dataset_samples <= MAX_SAMPLES
        for layer in spec.layers:
            assert max(layer.in_shape + layer.out_shape + layer.kernel + layer.stride) \
                <= MAX_SIZE
            assert 1 <= layer.params <= MAX_LAYER_VALUES
        assert spec.params <= MAX_PARAMS and spec.macs <= MAX_MACS
        return
    assert spec.alpha_s == 0 or ALPHA_RANGE[0] <= spec.alpha_s <= ALPHA_RANGE[1]
    assert BANDWIDTH_RANGE[0] <= spec.bandwidth_Bps <= BANDWIDTH_RANGE[1]
    assert FLOP_RATE_RANGE[0] <= spec.flop_rate <= FLOP_RATE_RANGE[1]
    assert WORD_BYTES_RANGE[0] <= spec.word_bytes <= WORD_BYTES_RANGE[1]
    assert spec.memory_bytes is None or MEMORY_RANGE[0] <= spec.memory_bytes <= MEMORY_RANGE[1]
    for level in spec.levels:
        assert BANDWIDTH_RANGE[0] <= level.bandwidth_Bps <= BANDWIDTH_RANGE[1]
        assert level.alpha_s == 0 or ALPHA_RANGE[0] <= level.alpha_s <= ALPHA_RANGE[1]
    for table in spec.compute_tables:
        assert all(EPOCH_TIME_RANGE[0] <= t <= EPOCH_TIME_RANGE[1] for t in table.epoch_s)
    assert math.isfinite(spec.beta_s_per_word)


def _check(text: str, kind: str) -> None:
    """A spec within its ranges, or one GridcostError of one bounded line; a file that gives
    a key twice is always refused."""
    try:
        spec = _load(text, kind)
    except GridcostError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message
        assert 0 < len(message) <= MAX_MESSAGE
        return
    assert len(text) > 100_000 or not _duplicate_keys(text), "a duplicate key was accepted"
    _in_range(spec)


SCALARS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e400", "-1", "0", "1e-300 B/s", "1e308 us", "1e30 GB/s", ".nan", ".inf",
                     "-.inf", "~", "[]", "{}", "[1, 2]", "'x'", '"', "'", "{{{", "- - -", "*a",
                     "&a 1", "!!python/object:os.system", "!!binary AA==", "9" * 5000,
                     "2 us", "6 GiB/s", "1 TFLOP/s", "16 GiB", "0 s", "1e-3 ns", "true", "null",
                     "2017-01-01", "0x7fffffffffffffff", "0o777", "1_000", "<<: *a", "\t",
                     "\u2028", "\x85", "\ufeff"]),
    st.builds(lambda x, u: f"{x} {u}", st.floats(allow_nan=True) | st.integers(-10**30, 10**30),
              st.sampled_from(["s", "us", "ns", "B/s", "GB/s", "GiB/s", "Gbit/s", "FLOP/s",
                               "TFLOP/s", "B", "GiB", "PiB", "s/word", "parsec"])),
    st.text(max_size=12),
)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, str]:
    """A bundled file with a few lines deleted, doubled, swapped or given random values."""
    kind, name = draw(st.sampled_from(sorted(TEXTS)))
    lines = TEXTS[kind, name].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "double", "swap", "value", "insert", "cut"]))
        if op == "delete":
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(SCALARS)}"
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=30)))
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        if not lines:
            lines = [""]
    return kind, "\n".join(lines) + "\n"


@FUZZ
@given(_mutated())
def test_mutated_bundled_files(case: tuple[str, str]) -> None:
    kind, text = case
    _check(text, kind)


KEYS = ["version", "name", "input", "layers", "type", "filters", "kernel", "stride", "units",
        "times", "body", "shortcut", "branches", "height", "width", "channels", "alpha",
        "bandwidth", "flop_rate", "memory", "levels", "processes", "compute", "tables",
        "epoch_time", "per_collective", "p2p", "dataset", "samples", "count", "tokens"]
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**66), 2**66),
                   st.floats(allow_nan=False), st.text(max_size=8),
                   st.sampled_from(["conv", "fc", "repeat", "residual", "concat", "pool",
                                    "2 us", "1 GB/s", "1 TFLOP/s", "alexnet"]))
TREES = st.recursive(LEAVES, lambda children: st.lists(children, max_size=4) | st.dictionaries(
    st.sampled_from(KEYS) | st.integers(0, 4), children, max_size=5), max_leaves=40)


@FUZZ
@given(st.sampled_from(["networks", "machines"]), st.dictionaries(st.sampled_from(KEYS), TREES,
                                                                  max_size=6))
def test_random_trees(kind: str, tree: dict[str, object]) -> None:
    _check(yaml.safe_dump({"version": 1, **tree}), kind)
    _check(yaml.safe_dump({"version": 1, "name": "n", **tree}, default_flow_style=True), kind)


@st.composite
def _nested(draw: st.DrawFn) -> str:
    """A value nested up to 2,000 deep, as a flow (YAML or JSON) or block YAML, in a field."""
    depth = draw(st.integers(1, 2000))
    leaf = draw(st.sampled_from(["1", '"x"', "{}", "[]"]))
    if draw(st.booleans()):
        opens, closes = zip(*(draw(st.sampled_from([("[", "]"), ('{"k": ', "}")]))
                              for _ in range(min(depth, 50))))
        reps = max(1, depth // 50)
        return "".join(opens) * reps + leaf + "".join(reversed(closes)) * reps
    return "\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(depth)) + \
        "  " * (depth + 1) + "v: 1"


@st.composite
def _bomb(draw: st.DrawFn) -> str:
    """An alias bomb: ``levels`` anchored lists, each ``width`` aliases of the one before."""
    levels, width = draw(st.integers(1, 10)), draw(st.integers(1, 12))
    rows = ["[&l0 [lol]"] + [f"&l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]"
                              for i in range(1, levels)]
    return ", ".join(rows) + "]"


@FUZZ
@given(st.sampled_from(["networks", "machines"]), st.sampled_from(["name", "description",
                                                                   "alpha", "layers", "input"]),
       st.one_of(_nested(), _bomb()))
def test_deep_and_exploding_values(kind: str, field: str, value: str) -> None:
    text = TEXTS[kind, "alexnet" if kind == "networks" else "ethernet-25g"]
    lines = [line for line in text.splitlines() if not line.startswith(f"{field}:")]
    _check("\n".join(lines) + f"\n{field}: {value}\n", kind)


NETWORK_FIELDS = ["filters: {v}", "kernel: {v}", "stride: {v}", "units: {v}", "times: {v}",
                  "height: {v}", "samples: {v}", "groups: {v}", "padding: {v}", "count: {v}"]
NET_TEMPLATE = """\
version: 1
name: t
dataset: {{name: d, samples: 1000}}
input: {{height: 32, width: 32, channels: 3}}
layers:
  - {{type: conv, filters: 8, kernel: 3}}
  - {{type: params, count: 4}}
  - {{type: repeat, times: 3, layers: [{{type: fc, units: 16}}]}}
"""
MACHINE_TEMPLATE = """\
version: 1
name: m
alpha: 2 us
bandwidth: 6 GiB/s
word_bytes: 4
flop_rate: 1 TFLOP/s
memory: 16 GiB
optimizer: adam
gamma: 0.1 ns/word
levels:
  - {name: node, processes: 4, alpha: 1 us, bandwidth: 100 GB/s}
  - {name: net}
schedule: {bucket: 25 MiB, backward_ratio: 2}
compute:
  tables:
    t: {network: alexnet, samples: 1000, epoch_time: {1: 10 s, 4: 4 s}}
"""


@FUZZ
@given(st.integers(0, 100), SCALARS)
def test_random_scalars_in_every_numeric_field(which: int, value: str) -> None:
    lines = MACHINE_TEMPLATE.splitlines()
    numeric = [i for i, line in enumerate(lines) if ":" in line and i > 1]
    i = numeric[which % len(numeric)]
    indent, key = lines[i][: len(lines[i]) - len(lines[i].lstrip())], lines[i].split(":")[0]
    if "{" in lines[i]:  # a flow mapping: replace its first value
        head, rest = lines[i].split("{", 1)
        first = rest.split(",")[0].split(":")[0]
        lines[i] = f"{head}{{{first}: {value}, {rest.split(',', 1)[-1].lstrip()}"
    else:
        lines[i] = f"{indent}{key.strip()}: {value}"
    _check("\n".join(lines) + "\n", "machines")
    field = NETWORK_FIELDS[which % len(NETWORK_FIELDS)]
    name = field.split(":")[0]
    net = NET_TEMPLATE.replace(f"{name}: ", f"{name}: {value}, _was: ", 1) \
        if f"{name}: " in NET_TEMPLATE else NET_TEMPLATE + f"  - {{type: fc, {name}: {value}}}\n"
    _check(net, "networks")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_json_inputs(text: str) -> None:
    """gridcost JSON inputs (calibrate import, validate --from-raw) through load_json."""
    with contextlib.suppress(ValueError, GridcostError):
        load_json(text, "j.json")
    with pytest.raises(GridcostError, match="nested less deep"):
        load_json("[" * 100_000, "j.json")


# --------------------------------------------------------------------------- end to end


def _files(tmp: Path) -> dict[str, tuple[list[str], bytes | None]]:
    """Generated bad inputs → (gridcost arguments, standard input)."""
    laughs = ['  - &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
        f"  - &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    files = {
        "laughs.yaml": "version: 1\nname: x\ndescription:\n" + "\n".join(laughs) + "\n",
        "deep.yaml": "a: " + "[" * 1200 + "]" * 1200 + "\n",
        "deep.json": '{"a": ' + "[" * 1200 + "]" * 1200 + "}",
        "dup.yaml": "name: dup\nname: dup2\n",
        "repeat.yaml": "version: 1\nname: r\ninput: {height: 8, width: 8, channels: 3}\n"
                       "layers:\n  - {type: repeat, times: 1000000000, layers: "
                       "[{type: fc, units: 10}]}\n",
        "tinybw.yaml": bundled_text("machines", "cori-knl").replace(
            "bandwidth: 6 GiB/s", "bandwidth: 1e-300 B/s"),
        "big.yaml": "# " + "x" * (3 * 2**20) + "\n",
    }
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    (tmp / "latin1.log").write_bytes(b"# nccl-tests caf\xe9\n")
    net = ["optimize", "--P", "4", "--net"]
    return {
        "laughs": ([*net, str(tmp / "laughs.yaml")], None),
        "deep-yaml": ([*net, str(tmp / "deep.yaml")], None),
        "deep-json": ([*net, str(tmp / "deep.json")], None),
        "dup": ([*net, str(tmp / "dup.yaml")], None),
        "repeat": ([*net, str(tmp / "repeat.yaml")], None),
        "tiny-bandwidth": (["optimize", "--P", "4", "--net", "alexnet", "--machine",
                            str(tmp / "tinybw.yaml")], None),
        "too-big": ([*net, str(tmp / "big.yaml")], None),
        "long-name": ([*net, "x" * 300], None),
        "stdin-not-utf8": ([*net, "-"], b"name: \xff\xfe\n"),
        "log-not-utf8": (["calibrate", "import", str(tmp / "latin1.log")], None),
        "log-deep-json": (["calibrate", "import", str(tmp / "deep.json")], None),
    }


CASES = ["laughs", "deep-yaml", "deep-json", "dup", "repeat", "tiny-bandwidth", "too-big",
         "long-name", "stdin-not-utf8", "log-not-utf8", "log-deep-json"]


@pytest.mark.parametrize("case", CASES)
def test_cli_refuses_in_one_line(case: str, tmp_path: Path) -> None:
    args, stdin = _files(tmp_path)[case]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "costmodel.cli", *args], input=stdin or b"",
                          capture_output=True, cwd=ROOT, env=env, timeout=120)
    err = done.stderr.decode("utf-8")
    assert done.returncode == 2, err
    assert done.stdout == b""
    assert err.count("\n") == 1 and err.startswith("gridcost: "), err
    assert len(err) <= MAX_MESSAGE + len("gridcost: \n")
