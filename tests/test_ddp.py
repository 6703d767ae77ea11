"""A PyTorch DDP step against overlap 'backward' (costmodel.measure.ddp, validation.ddp_analysis).

The analysis is checked by hand on a synthetic record (no torch); one brief real run on two
gloo processes checks that DDP's own buckets are the ones gridcost predicts for the validation
network (skipped without torch).
"""

from __future__ import annotations

from typing import Any

import pytest

from costmodel.engine.buckets import PRESETS
from costmodel.inputs.loaders import load_machine
from costmodel.measure.validation import ddp_analysis, ddp_table, load_validation_network

DDP_BUCKETS = [4_264_000, 16_865_024]
"""DDP's rebuilt buckets of the validation network (fp32): fc3 + fc2 (≥ the 1 MiB first
bucket), then fc1, conv2, conv1 (under 25 MiB) — what torch 2.x reports."""


def synthetic(compute: float, reduce: list[float], step: float) -> dict[str, Any]:
    rank = {"compute_s": [compute] * 3, "ddp_s": [step] * 3, "allreduce_s": [reduce] * 3,
            "bucket_bytes": DDP_BUCKETS, "gradient_bytes": sum(DDP_BUCKETS)}
    return {"ranks": [rank, rank], "world": 2, "batch": 64, "backend": "gloo"}


def test_gridcost_predicts_ddps_buckets() -> None:
    a = ddp_analysis(synthetic(0.2, [0.01, 0.04], 0.25), load_validation_network(),
                     load_machine("cori-knl"))
    assert a["predicted_bucket_bytes"] == pytest.approx(DDP_BUCKETS)


def test_analysis_by_hand() -> None:
    # compute 0.2 s, buckets measured 0.01 and 0.04 s, DDP step 0.25 s
    a = ddp_analysis(synthetic(0.2, [0.01, 0.04], 0.25), load_validation_network(),
                     load_machine("cori-knl"))
    assert a["compute_s"] == 0.2 and a["allreduce_s"] == pytest.approx(0.05)
    assert a["measured_serial_s"] == pytest.approx(0.25)
    assert a["overlap_achieved_pct"] == pytest.approx(0.0, abs=1e-9)  # 0.2 + 0.05 − 0.25 = 0
    # with the measured all-reduces the schedule hides bucket 1 (fc3, fc2: ready early in the
    # backward) and leaves bucket 2 (it closes with conv1, the last layer) after the compute:
    # 0.2 + 0.04 = 0.24 s, 4 % under the measured step
    assert a["predicted_backward_measured_allreduce_s"] == pytest.approx(0.24)
    assert a["backward_measured_allreduce_error_pct"] == pytest.approx(-4.0)
    assert a["predicted_batch_s"] <= a["predicted_backward_s"] <= a["predicted_none_s"]
    text = "\n".join(ddp_table([a], "cori-knl").headers)
    assert "DDP step [ms]" in text


def test_ddp_preset_is_what_the_analysis_uses() -> None:
    assert PRESETS["ddp"].first_cap_bytes == 1024 * 1024


def test_a_real_ddp_step_on_two_processes() -> None:
    pytest.importorskip("torch", reason="torch is not installed: pip install '.[measure]'")
    from costmodel.measure.launch import run_local

    result = run_local("ddp", {"batch": 8, "warmup": 2, "iterations": 2, "seed": 0,
                               "timeout_s": 120}, 2, timeout_s=240)
    assert result["world"] == 2 and len(result["ranks"]) == 2
    rank = result["ranks"][0]
    assert rank["bucket_bytes"] == DDP_BUCKETS
    assert len(rank["ddp_s"]) == 2 and all(t > 0 for t in rank["compute_s"])
    a = ddp_analysis(result, load_validation_network(), load_machine("cori-knl"))
    assert a["ddp_step_s"] > 0 and a["predicted_backward_s"] > 0


def test_validate_from_raw_shows_the_ddp_table(tmp_path: Any) -> None:
    import json
    from pathlib import Path

    from cli_helpers import run

    stored = json.loads((Path(__file__).parent.parent / "docs" / "validation"
                         / "val-raw.json").read_text(encoding="utf-8"))
    stored["ddp"] = [synthetic(0.2, [0.01, 0.04], 0.25)]
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(stored), encoding="utf-8")
    out = run("validate", "--machine", "cori-knl", "--from-raw", str(raw), "--ddp")
    assert "5. a PyTorch DDP step" in out
    record = json.loads(run("validate", "--machine", "cori-knl", "--from-raw", str(raw), "--ddp",
                            "--format", "json"))
    assert record["ddp"][0]["predicted_backward_measured_allreduce_s"] == pytest.approx(0.24)
