"""Gradient bucketing: how the weight gradients of one iteration are fused into all-reduces
(docs/schedule.md §3).

Frameworks do not all-reduce each layer's gradient on its own: they fuse the gradients, in the
order the backward pass produces them, into buckets and all-reduce a bucket once it is full.
A :class:`Bucketing` says how full is full.  The presets use the frameworks' documented
defaults:

* ``ddp`` — PyTorch DistributedDataParallel: ``bucket_cap_mb`` = 25 MiB, and a smaller first
  bucket of 1 MiB (``torch.distributed._DEFAULT_FIRST_BUCKET_BYTES``; the C++ constants
  ``kDefaultBucketBytesCap = 25 * 1024 * 1024`` and ``kDefaultFirstBucketBytes = 1024 * 1024``
  in ``torch/csrc/distributed/c10d/reducer.hpp``; ``_DEFAULT_BUCKET_CAP_MB = 25`` in
  ``torch/nn/parallel/distributed.py``, torch 2.x).  A bucket closes once its size reaches the
  cap (``compute_bucket_assignment_by_size``: a tensor is appended, then the bucket is closed
  when it holds ≥ the limit), so a bucket may exceed the cap by its last tensor.
* ``horovod`` — Horovod Tensor Fusion: ``HOROVOD_FUSION_THRESHOLD``, "Default fusion buffer
  size is 64 MB" (Horovod documentation, *Tensor Fusion*, docs/tensor-fusion.rst).  Horovod
  selects "first few tensors that fit in HOROVOD_FUSION_THRESHOLD bytes": a bucket never
  exceeds the threshold unless one tensor alone does.  (Horovod ≥ 0.21 raised the default to
  128 MB, release notes of v0.21.0, PR #2468: use ``--bucket-size 128MiB`` for it.)
* ``layer`` — one all-reduce per layer: the paper's latency count (``--bucket-size 0``).

Bucket sizes are in bytes of gradient: words × the machine's ``word_bytes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from costmodel.errors import UsageError

MIB = 1024 * 1024

CLOSE_AT_CAP, FIT_UNDER_CAP = "reach", "fit"
"""How a bucket fills: DDP appends and closes once the bucket reaches the cap ('reach');
Horovod fuses only what fits under the cap ('fit')."""


@dataclass(frozen=True)
class Bucketing:
    """One rule for fusing gradients: the cap of every bucket but the first (bytes), the cap of
    the first bucket (the first to fill: the last layers' gradients), and the filling rule.
    ``cap_bytes`` 0 is one all-reduce per layer."""

    name: str
    cap_bytes: float
    first_cap_bytes: float
    rule: str = CLOSE_AT_CAP
    source: str = ""

    @property
    def per_layer(self) -> bool:
        """True when every layer's gradient is its own all-reduce (the paper's count)."""
        return self.cap_bytes == 0

    @property
    def label(self) -> str:
        """For titles: 'ddp (25 MiB, first 1 MiB)', 'layer (one all-reduce per layer)'."""
        if self.per_layer:
            return f"{self.name} (one all-reduce per layer)"
        size = _size_text(self.cap_bytes)
        first = ("" if self.first_cap_bytes == self.cap_bytes
                 else f", first {_size_text(self.first_cap_bytes)}")
        return f"{self.name} ({size}{first})" if self.name != size else size


def _size_text(nbytes: float) -> str:
    if nbytes >= MIB and nbytes % MIB == 0:
        return f"{int(nbytes // MIB)} MiB"
    if nbytes >= 1024 and nbytes % 1024 == 0:
        return f"{int(nbytes // 1024)} KiB"
    return f"{nbytes:g} B"


PRESETS: dict[str, Bucketing] = {
    "ddp": Bucketing("ddp", 25 * MIB, 1 * MIB, CLOSE_AT_CAP,
                     "PyTorch DDP: bucket_cap_mb 25 MiB, first bucket 1 MiB "
                     "(torch/csrc/distributed/c10d/reducer.hpp)"),
    "horovod": Bucketing("horovod", 64 * MIB, 64 * MIB, FIT_UNDER_CAP,
                         "Horovod Tensor Fusion: HOROVOD_FUSION_THRESHOLD 64 MB "
                         "(docs/tensor-fusion.rst)"),
    "layer": Bucketing("layer", 0.0, 0.0, CLOSE_AT_CAP,
                       "one all-reduce per layer (the paper's latency count)"),
}
DEFAULT_PRESET = "ddp"
"""The bucketing of `--overlap backward` when neither the command nor the machine profile
names one: PyTorch DDP's defaults."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMG]i?B|B|)\s*$")
_FACTORS = {"": 1.0, "B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024.0,
            "MiB": float(MIB), "GiB": float(1024 * MIB)}


def parse_size(text: str, option: str = "--bucket-size") -> float:
    """Bytes from '0', '25MiB', '64 MB', '1048576' (decimal and binary prefixes)."""
    match = _SIZE.match(str(text))
    if match is None:
        raise UsageError(f"{option}: expected a size in bytes like 0, 25MiB, 64MB or 1048576, "
                         f"got {text!r}")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def bucketing(spec: str | None = None, size: str | float | None = None,
              machine_default: str | None = None) -> Bucketing:
    """The bucketing asked for: an explicit ``size`` (bytes, or text for :func:`parse_size`)
    wins; then the preset ``spec``; then the machine profile's default (a preset name or a
    size); then :data:`DEFAULT_PRESET`.  An explicit size uses one cap for every bucket, filled
    as DDP fills them."""
    if size is not None:
        nbytes = parse_size(size) if isinstance(size, str) else float(size)
        if not nbytes >= 0:
            raise UsageError(f"--bucket-size: expected a size ≥ 0 bytes, got {size!r}")
        return Bucketing(_size_text(nbytes) if nbytes else "layer", nbytes, nbytes)
    chosen = spec if spec is not None else machine_default
    if chosen is None:
        return PRESETS[DEFAULT_PRESET]
    if chosen in PRESETS:
        return PRESETS[chosen]
    if spec is not None:
        raise UsageError(f"--bucket: expected one of {', '.join(PRESETS)}, got {spec!r} "
                         "(a size goes in --bucket-size)")
    return bucketing(size=chosen)
