"""Stage 1, inputs: YAML (or a PyTorch/ONNX model) → validated, immutable specs.

:mod:`specs` holds the frozen Network, Layer, Machine and Level; :mod:`loaders` reads and checks
YAML into them (the only module that imports yaml); :mod:`importers` traces a PyTorch or ONNX
model into a network's YAML.
"""
