"""headstart: transfer learning with PyTorch for small target tasks.

The pipeline reads left to right in the package layout:
``backbones`` (catalog, weights, preprocessing recipe) -> ``data`` (sources, splits, transforms)
-> ``strategies`` (what trains, with which learning rates) -> ``engine`` (feature extraction,
train loop, inference) -> ``metrics`` / ``report`` -> ``artifacts`` (save, load, predict) -> ``cli``.
"""

from headstart.errors import HeadstartError

__version__ = "0.1.0"
__all__ = ["HeadstartError", "__version__"]
