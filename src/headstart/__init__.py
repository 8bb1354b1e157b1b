"""headstart: transfer learning with PyTorch for small target tasks.

The pipeline reads left to right in the package layout:
``backbones`` (catalog, weights, preprocessing recipe) -> ``data`` (sources, splits, transforms)
-> ``strategies`` (what trains, with which learning rates) -> ``engine`` (feature extraction,
train loop, inference) -> ``metrics`` / ``report`` -> ``artifacts`` (save, load, predict) -> ``cli``.

The Python API (``import headstart as hs``) is the CLI's engine for notebooks::

    run = hs.fit("builtin:elpv", backbone="mobilenet_v2", strategy="linear-probe", out="runs/cells")
    model = hs.load(run.path)
    model.predict(["cell.png", pil_image, array_hwc, tensor_chw])
"""

from headstart.api import Model, Run, compare, fit, load, rank
from headstart.errors import HeadstartError, RunInterrupted

__version__ = "0.1.0"
__all__ = ["HeadstartError", "Model", "Run", "RunInterrupted", "__version__", "compare", "fit", "load", "rank"]
