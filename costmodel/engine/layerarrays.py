"""The network's per-layer numbers as arrays, and the local batch: what both the cost table
(:mod:`costmodel.engine.cost`) and the schedule (:mod:`costmodel.engine.schedule`) read, kept below
both so that the cost table can build on the schedule without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.inputs.specs import Layer, Network, distinct_layers


@dataclass(frozen=True)
class LayerArrays:
    """The network's per-layer numbers as float arrays of shape (1, L), ready to broadcast."""

    params: np.ndarray
    activations: np.ndarray
    split_size: np.ndarray
    in_height: np.ndarray
    in_row_words: np.ndarray
    out_row_words: np.ndarray
    halo_h: np.ndarray
    halo_w: np.ndarray
    is_conv: np.ndarray

    def take(self, index: np.ndarray) -> LayerArrays:
        """The layers at ``index`` (columns), shapes (1, len(index))."""
        return LayerArrays(**{name: getattr(self, name)[:, index]
                              for name in self.__dataclass_fields__})

    def transposed(self) -> LayerArrays:
        """The same numbers as columns (L, 1), to broadcast to (L, G) against (1, G) group
        sizes: the orientation of the schedule (costmodel.engine.schedule)."""
        return LayerArrays(**{name: getattr(self, name).T for name in self.__dataclass_fields__})

    def take_rows(self, index: np.ndarray) -> LayerArrays:
        """The layers at ``index`` of a :meth:`transposed` copy (rows), shapes (len(index), 1)."""
        return LayerArrays(**{name: getattr(self, name)[index]
                              for name in self.__dataclass_fields__})

    @classmethod
    def of(cls, network: Network) -> LayerArrays:
        """Arrays of every weighted layer of ``network``, in order."""
        return cls._of(network.layers)

    @classmethod
    def unique_of(cls, network: Network) -> tuple[LayerArrays, np.ndarray]:
        """Arrays of the distinct layers of ``network`` and how often each occurs, (1, U).

        Identical layers (same kind, shapes, kernel, stride and parameters: the repeated blocks
        of a ResNet) cost the same on every grid, so totals need each only once, weighted.
        """
        kept, counts = distinct_layers(network.layers)
        return cls._of(kept), counts[None, :]

    @classmethod
    def _of(cls, layers: tuple[Layer, ...]) -> LayerArrays:
        def row(values: list[float]) -> np.ndarray:
            return np.asarray(values, dtype=np.float64)[None, :]

        return cls(
            params=row([layer.params for layer in layers]),
            activations=row([layer.activations for layer in layers]),
            split_size=row([layer.split_size for layer in layers]),
            in_height=row([layer.in_shape[0] for layer in layers]),
            in_row_words=row([layer.in_shape[1] * layer.in_shape[2] for layer in layers]),
            out_row_words=row([layer.out_shape[1] * layer.out_shape[2] for layer in layers]),
            halo_h=row([layer.halo_rows[0] for layer in layers]),
            halo_w=row([layer.halo_rows[1] for layer in layers]),
            is_conv=np.array([[layer.kind == "conv" for layer in layers]]),
        )



def local_batch(batch: np.ndarray, pc: np.ndarray) -> np.ndarray:
    """⌈B/Pc⌉: samples on the slowest process of a Pc group (docs/model.md §6)."""
    return np.asarray(-(-batch // pc))
