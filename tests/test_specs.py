"""Tests of costmodel.inputs.specs: the invariants and derived sizes of Layer, Network, Machine and
ComputeTable (docs/model.md §2 and §7)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel.errors import SpecError, UnknownName
from costmodel.inputs.specs import ComputeTable, Layer, Machine, Network

# AlexNet conv1 (227×227×3 → 55×55×96, 11×11 stride 4) and conv2 (27×27×96 → 27×27×256, 5×5,
# 2 groups), fc6 (9216 → 4096): hand-computed sizes.
CONV1 = Layer("conv1", "conv", (227, 227, 3), (55, 55, 96), kernel=(11, 11), stride=(4, 4),
              weight_params=96 * 3 * 11 * 11 + 96)
CONV2 = Layer("conv2", "conv", (27, 27, 96), (27, 27, 256), kernel=(5, 5), padding=(2, 2),
              groups=2, weight_params=256 * 48 * 5 * 5 + 256)
FC6 = Layer("fc6", "fc", (1, 1, 9216), (1, 1, 4096), weight_params=9216 * 4096 + 4096)


def _layer(name: str = "l", kind: str = "fc", **kw: object) -> Layer:
    args: dict[str, object] = {"in_shape": (1, 1, 8), "out_shape": (1, 1, 4),
                               "weight_params": 36}
    args.update(kw)
    return Layer(name, kind, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Layer


def test_conv_layer_sizes() -> None:
    assert CONV1.params == 34_944
    assert CONV1.activations == 55 * 55 * 96 == 290_400
    assert CONV1.split_size == 96
    assert CONV1.macs == 290_400 * 3 * 11 * 11 == 105_415_200
    assert CONV1.halo_rows == (5, 5)


def test_grouped_conv_counts_only_its_groups_input_channels() -> None:
    assert CONV2.params == 307_456
    assert CONV2.activations == 27 * 27 * 256
    assert CONV2.split_size == 256
    assert CONV2.macs == 27 * 27 * 256 * (96 // 2) * 5 * 5 == 223_948_800
    assert CONV2.halo_rows == (2, 2)


def test_fc_layer_sizes() -> None:
    assert FC6.params == 37_752_832
    assert FC6.activations == 4096
    assert FC6.split_size == 4096
    assert FC6.macs == 9216 * 4096
    assert FC6.halo_rows == (0, 0)


def test_fc_macs_flatten_a_spatial_input() -> None:
    fc = Layer("fc", "fc", (6, 6, 256), (1, 1, 4096), weight_params=1)
    assert fc.macs == 6 * 6 * 256 * 4096


def test_norm_parameters_count_with_the_layer() -> None:
    layer = dataclasses.replace(CONV1, norm_params=2 * 96)
    assert layer.params == 34_944 + 192
    assert layer.weight_params == 34_944


def test_rectangular_kernel_halo_and_macs() -> None:
    layer = Layer("c", "conv", (10, 12, 4), (10, 12, 8), kernel=(1, 7), padding=(0, 3),
                  weight_params=8 * 4 * 7)
    assert layer.halo_rows == (0, 3)
    assert layer.macs == 10 * 12 * 8 * 4 * 7


def test_one_by_one_conv_needs_no_halo() -> None:
    layer = Layer("c", "conv", (7, 7, 512), (7, 7, 2048), weight_params=512 * 2048)
    assert layer.halo_rows == (0, 0)
    assert layer.macs == 7 * 7 * 2048 * 512


def test_layer_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONV1.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"kind": "pool"}, "layer l: expected kind 'conv' or 'fc', got 'pool'"),
        ({"in_shape": (1, 8)}, "layer l.in_shape: expected three positive sizes, got (1, 8)"),
        ({"out_shape": (1, 0, 4)},
         "layer l.out_shape: expected three positive sizes, got (1, 0, 4)"),
        ({"in_shape": (1, 1, -8)},
         "layer l.in_shape: expected three positive sizes, got (1, 1, -8)"),
        ({"weight_params": 0}, "layer l: expected a positive parameter count"),
        ({"norm_params": -1}, "layer l: expected a positive parameter count"),
    ],
    ids=["kind", "in-rank", "out-zero", "in-negative", "no-weights", "negative-norm"],
)
def test_invalid_layer(kw: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as info:
        _layer(**kw)
    assert str(info.value) == message


# --------------------------------------------------------------------------- Network


def test_network_sums_its_layers() -> None:
    net = Network("tiny", (CONV1, CONV2, FC6), (227, 227, 3))
    assert net.params == CONV1.params + CONV2.params + FC6.params
    assert net.macs == CONV1.macs + CONV2.macs + FC6.macs
    assert net.dataset_samples == 1_200_000
    assert net.layer_index("conv2") == 1
    assert net.layer_index("fc6") == 2


def test_network_unknown_layer_suggests_a_close_name() -> None:
    net = Network("tiny", (CONV1, CONV2, FC6), (227, 227, 3))
    with pytest.raises(UnknownName) as info:
        net.layer_index("conv3")
    assert str(info.value) == (
        "unknown layer 'conv3'; did you mean 'conv1' or 'conv2'? (known: conv1, conv2, fc6)"
    )


def test_network_rejects_duplicate_layer_names() -> None:
    with pytest.raises(SpecError) as info:
        Network("tiny", (CONV1, dataclasses.replace(FC6, name="conv1")), (227, 227, 3))
    assert str(info.value) == "tiny: layers: expected unique weighted-layer names, got 'conv1'"


def test_network_needs_a_layer() -> None:
    with pytest.raises(SpecError) as info:
        Network("tiny", (), (8, 8, 3))
    assert str(info.value) == "tiny: layers: expected at least one conv or fc layer"


def test_network_needs_positive_samples() -> None:
    with pytest.raises(SpecError) as info:
        Network("tiny", (FC6,), (1, 1, 9216), dataset_samples=0)
    assert str(info.value) == "tiny: dataset.samples: expected a positive integer, got 0"


# --------------------------------------------------------------------------- Machine


def test_beta_is_word_bytes_over_bandwidth() -> None:
    knl = Machine("knl", alpha_s=2e-6, bandwidth_Bps=6 * 2**30)
    assert knl.word_bytes == 4
    assert knl.beta_s_per_word == 4 / (6 * 2**30)
    a100 = Machine("a100", alpha_s=5e-6, bandwidth_Bps=25e9, word_bytes=2)
    assert a100.beta_s_per_word == pytest.approx(8e-11, rel=1e-15)


def test_zero_latency_is_allowed() -> None:
    assert Machine("ideal", alpha_s=0.0, bandwidth_Bps=1e9).alpha_s == 0.0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"alpha_s": -1e-6}, "m: alpha: expected a latency ≥ 0 s, got -1e-06"),
        ({"alpha_s": math.nan}, "m: alpha: expected a latency ≥ 0 s, got nan"),
        ({"bandwidth_Bps": 0.0}, "m: bandwidth: expected a positive bandwidth, got 0.0"),
        ({"bandwidth_Bps": -6e9}, "m: bandwidth: expected a positive bandwidth, got -6000000000.0"),
        ({"bandwidth_Bps": math.nan}, "m: bandwidth: expected a positive bandwidth, got nan"),
        ({"word_bytes": 0}, "m: word_bytes: expected a positive integer, got 0"),
        ({"flop_rate": 0.0}, "m: flop_rate: expected a positive FLOP/s, got 0.0"),
        ({"default_table": "fig4"}, "m: compute.default: expected one of [], got 'fig4'"),
    ],
    ids=["negative-alpha", "nan-alpha", "zero-bw", "negative-bw", "nan-bw", "zero-word",
         "zero-flops", "missing-default-table"],
)
def test_invalid_machine(kw: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"alpha_s": 2e-6, "bandwidth_Bps": 1e9}
    args.update(kw)
    with pytest.raises(SpecError) as info:
        Machine("m", **args)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_machine_tables_by_name_and_default() -> None:
    a = ComputeTable("a", "alexnet", (1, 4), (100.0, 25.0))
    b = ComputeTable("b", "alexnet", (1, 2), (10.0, 6.0))
    m = Machine("m", 2e-6, 1e9, compute_tables=(a, b), default_table="b")
    assert m.table() is b
    assert m.table("a") is a
    with pytest.raises(UnknownName) as info:
        m.table("c")
    assert str(info.value) == "unknown compute table 'c' (known: a, b)"
    assert Machine("bare", 2e-6, 1e9).table() is None


# --------------------------------------------------------------------------- ComputeTable


TABLE = ComputeTable("t", "alexnet", (1, 4), (100.0, 25.0))


def test_log_log_interpolation_at_the_midpoint() -> None:
    """log T is linear in log b: halfway (b = 2) between 100 s and 25 s is √(100·25) = 50 s."""
    seconds, outside = TABLE.epoch_time_s(np.array([2.0]))
    assert seconds[0] == pytest.approx(50.0, rel=1e-12)
    assert not outside[0]


def test_table_entries_are_reproduced() -> None:
    seconds, outside = TABLE.epoch_time_s(np.array([1, 4]))
    np.testing.assert_allclose(seconds, [100.0, 25.0], rtol=1e-12)
    assert not outside.any()


def test_outside_range_extends_the_end_slope_and_is_flagged() -> None:
    seconds, outside = TABLE.epoch_time_s(np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0]))
    np.testing.assert_allclose(seconds, [200.0, 100.0, 50.0, 25.0, 12.5, 6.25], rtol=1e-12)
    assert outside.tolist() == [True, False, False, False, True, True]


def test_interpolation_uses_the_nearest_segments() -> None:
    table = ComputeTable("t", "x", (1, 2, 4, 8), (30.0, 20.0, 10.0, 40.0))
    seconds, outside = table.epoch_time_s(np.array([0.5, 2**0.5, 2**2.5, 16.0]))
    # below: slope of segment 1–2; inside: geometric means; above: slope of segment 4–8.
    np.testing.assert_allclose(
        seconds, [45.0, math.sqrt(600.0), math.sqrt(400.0), 160.0], rtol=1e-12)
    assert outside.tolist() == [True, False, False, True]


def test_interpolation_broadcasts_over_shapes() -> None:
    batches = np.array([[1.0, 2.0], [4.0, 8.0]])
    seconds, outside = TABLE.epoch_time_s(batches)
    assert seconds.shape == outside.shape == (2, 2)
    np.testing.assert_allclose(seconds, [[100.0, 50.0], [25.0, 12.5]], rtol=1e-12)


@given(st.lists(st.floats(min_value=1.0, max_value=1e5), min_size=2, max_size=8),
       st.floats(min_value=0.0, max_value=1.0))
def test_inside_values_lie_between_their_neighbours(times: list[float], frac: float) -> None:
    batches = tuple(2**i for i in range(len(times)))
    table = ComputeTable("t", "x", batches, tuple(times))
    b = 2 ** (frac * (len(times) - 1))
    seconds, outside = table.epoch_time_s(np.array([b]))
    i = min(math.floor(math.log2(b)), len(times) - 2)
    lo, hi = sorted(times[i:i + 2])
    assert lo * (1 - 1e-12) <= seconds[0] <= hi * (1 + 1e-12)
    assert not outside[0]


@pytest.mark.parametrize(
    ("batches", "seconds", "message"),
    [
        ((1,), (100.0,), "t: epoch_time: expected at least two (local batch, time) entries"),
        ((1, 2), (100.0,), "t: epoch_time: expected at least two (local batch, time) entries"),
        ((4, 1), (25.0, 100.0), "t: epoch_time: expected increasing local batch sizes"),
        ((1, 1), (100.0, 90.0), "t: epoch_time: expected increasing local batch sizes"),
    ],
    ids=["one-entry", "length-mismatch", "decreasing", "repeated"],
)
def test_invalid_compute_table(batches: tuple[int, ...], seconds: tuple[float, ...],
                               message: str) -> None:
    with pytest.raises(SpecError) as info:
        ComputeTable("t", "alexnet", batches, seconds)
    assert str(info.value) == message


def test_machine_gamma_must_be_a_time_per_word_at_least_zero() -> None:
    assert Machine("m", alpha_s=0.0, bandwidth_Bps=1.0).gamma_s_per_word == 0.0
    assert Machine("m", alpha_s=0.0, bandwidth_Bps=1.0).collectives == "paper"
    for bad in (-1e-9, float("inf"), float("nan")):
        with pytest.raises(SpecError) as info:
            Machine("m", alpha_s=0.0, bandwidth_Bps=1.0, gamma_s_per_word=bad)
        assert str(info.value) == f"m: gamma: expected a time per word ≥ 0, got {bad!r}"
