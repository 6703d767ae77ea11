"""A hierarchical machine profile fitted to the measurements of an emulated cluster.

``gridcost calibrate run --emulate`` (costmodel.measure.emulate) measures the collectives inside
the nodes and across them; each level gets calibrate's joint α, β fit
(:func:`costmodel.measure.calibration.calibrate`) and the profile carries them as ``levels``
(docs/hierarchy.md): the node level with the processes per node, the network level (the
top-level α and bandwidth).  The network's bandwidth is per process, with the K processes of a
node sharing its link at once, as they do in a job: K × it is what one node moved, to be set
against the link's shaped RATE.  No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from costmodel.measure.calibration import Calibration, Series, calibrate, implausibilities
from costmodel.output.report import Table
from costmodel.records import EmulatedCalibrationRecord


@dataclass(frozen=True)
class LevelFit:
    """The fit of one level: its name, the series and calibrate's result."""

    name: str
    series: tuple[Series, ...]
    calibration: Calibration


def fit_levels(node: Sequence[Series], network: Sequence[Series],
               collectives: str = "paper") -> list[LevelFit]:
    """Calibrate each level on its own series: node (when measured) first, then network."""
    out = []
    if node:
        out.append(LevelFit("node", tuple(node), calibrate(node, collectives)))
    out.append(LevelFit("network", tuple(network), calibrate(network, collectives)))
    return out


def level_problems(levels: Sequence[LevelFit]) -> list[str]:
    """Implausibilities of each level's fit
    (:func:`costmodel.measure.calibration.implausibilities`), prefixed with the level."""
    return [f"{lv.name} level: {p}" for lv in levels
            for p in implausibilities(lv.calibration, lv.series)]


def provenance(emulation: str, inside: dict[str, object] | None, across: dict[str, object],
               statistic: str, collectives: str) -> str:
    """The profile's provenance line: the emulation, the measurement (backend, torch,
    repetitions, sizes per level) and the forms the levels were fitted with."""
    def sizes(data: dict[str, object] | None) -> str:
        series = data.get("series") if data else None
        if data is None or not isinstance(series, list):
            return "not measured"
        word_bytes = int(str(data.get("word_bytes", 4)))
        words = [int(w) for entry in series if isinstance(entry, dict)
                 for w in entry.get("words", [])]
        return f"{min(words) * word_bytes} B to {max(words) * word_bytes} B" if words else "none"

    return (f"Measured by gridcost calibrate run --emulate '{emulation}': torch.distributed "
            f"{across.get('backend')}, emulated (torch {across.get('torch')}), {statistic} of "
            f"{across.get('reps')} after {across.get('warmup')} warm-up, sizes "
            f"{sizes(inside)} inside a node, {sizes(across)} across nodes; levels fitted with "
            f"the {collectives} forms.")


def _g(value: float) -> str:
    return f"{value:.6g}"


def profile_yaml(levels: Sequence[LevelFit], ppn: int, rate_Bps: float, name: str,
                 flop_rate: float, description: str, provenance: Sequence[str] = (),
                 warnings: Sequence[str] = ()) -> str:
    """The hierarchical machine profile (docs/formats.md, docs/hierarchy.md) as YAML text."""
    from costmodel.measure.calibration import _comment, _yaml_text

    network = levels[-1].calibration
    lines = [f"# Machine profile written by gridcost calibrate run --emulate "
             f"({network.collectives} collectives).",
             *(f"# WARNING (written with --accept-implausible): {_comment(w)}"
               for w in warnings),
             *(f"# {_comment(p)}" for p in provenance),
             f"# Link of each node shaped to {rate_Bps * 8 / 1e6:.6g} Mbit/s; the network "
             f"bandwidth is per process ({ppn} per node share the link): "
             f"{ppn} × {_g(network.bandwidth_Bps / 1e6)} MB/s = "
             f"{_g(ppn * network.bandwidth_Bps * 8 / 1e6)} Mbit/s per node.",
             "# Per-series fits t(n) = a + b·n and the α, β they imply (n in words):"]
    for lv in levels:
        for f in lv.calibration.fits:
            lines.append(f"#   {lv.name}: {f.series.label}: α = {_g(f.alpha_s * 1e6)} us, "
                         f"β = {_g(f.beta_s_per_word * 1e9)} ns/word")
    lines += [
        "version: 1",
        f"name: {_yaml_text(name)}",
        f"description: {_yaml_text(description)}",
        f"alpha: {_g(network.alpha_s * 1e6)} us",
        f"bandwidth: {_g(network.bandwidth_Bps / 1e6)} MB/s",
        f"word_bytes: {network.word_bytes}",
        f"flop_rate: {_g(flop_rate / 1e9)} GFLOP/s",
    ]
    if len(levels) > 1:
        node = levels[0].calibration
        lines += ["levels:",
                  f"  - {{name: node, processes: {ppn}, alpha: {_g(node.alpha_s * 1e6)} us, "
                  f"bandwidth: {_g(node.bandwidth_Bps / 1e6)} MB/s}}",
                  "  - {name: network}"]
    return "\n".join(lines) + "\n"


def levels_table(levels: Sequence[LevelFit], ppn: int, rate_Bps: float, title: str) -> Table:
    """One row per level: α, per-process bandwidth, per node, and the shaped link's rate."""
    rows = []
    for lv in levels:
        cal = lv.calibration
        per_node = cal.bandwidth_Bps * ppn if lv.name == "network" else None
        rows.append([lv.name, len(lv.series), cal.alpha_s * 1e6, cal.bandwidth_Bps * 8 / 1e6,
                     None if per_node is None else per_node * 8 / 1e6,
                     rate_Bps * 8 / 1e6 if lv.name == "network" else None,
                     None if per_node is None else per_node / rate_Bps * 100])
    return Table(["level", "series", "α [µs]", "bandwidth per process [Mbit/s]",
                  "per node [Mbit/s]", "link RATE [Mbit/s]", "per node / RATE [%]"], rows, title,
                 [f"network: the {ppn} processes of a node share its link at once, so per node "
                  f"= {ppn} × per process; TCP/IP headers take ~5 % of a link"])


def record(levels: Sequence[LevelFit], ppn: int, rate_Bps: float) -> EmulatedCalibrationRecord:
    """JSON record of the level fits."""
    return {"levels": [{"name": lv.name, "alpha_s": lv.calibration.alpha_s,
                        "bandwidth_Bps": lv.calibration.bandwidth_Bps,
                        "series": [s.label for s in lv.series]} for lv in levels],
            "ppn": ppn, "link_rate_Bps": rate_Bps,
            "network_per_node_Bps": levels[-1].calibration.bandwidth_Bps * ppn}
