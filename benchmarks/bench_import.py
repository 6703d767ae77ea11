"""How long `gridcost import` takes: ResNet-152 and ViT-B/16 from torchvision (docs/import.md).

    python benchmarks/bench_import.py

Prints, per model, the seconds to build it on the meta device and trace it, to write the YAML,
and to read it back through the loader; the first model also pays torch's own import.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    start = time.perf_counter()
    import torchvision  # noqa: F401  (torch's import, timed apart)

    print(f"import torch, torchvision: {time.perf_counter() - start:.2f} s")
    from costmodel.inputs.importers import trace_source
    from costmodel.inputs.importers.records import network_yaml
    from costmodel.inputs.loaders import network_from_text

    for source in ("torchvision:resnet152", "torchvision:vit_b_16"):
        t0 = time.perf_counter()
        trace = trace_source(source)
        t1 = time.perf_counter()
        text = network_yaml(trace)
        t2 = time.perf_counter()
        network = network_from_text(text, source)
        t3 = time.perf_counter()
        print(f"{source}: build + trace {t1 - t0:.2f} s, YAML {t2 - t1:.3f} s, load "
              f"{t3 - t2:.3f} s, total {t3 - t0:.2f} s ({len(network.layers)} weighted layers, "
              f"{network.params:,} parameters)")


if __name__ == "__main__":
    main()
