"""``headstart serve``: a trained run behind HTTP (FastAPI on uvicorn, micro-batched).

The server lives in :mod:`headstart.serve.app` (``create_app``) and :mod:`headstart.serve.batcher`
(``MicroBatcher``); both need the optional packages of ``pip install 'headstart[serve]'``, which
:func:`require_server_packages` checks first so that a missing one is a message, not an ImportError.
"""

from __future__ import annotations

import importlib.util

from headstart.errors import HeadstartError

__all__ = ["require_server_packages", "SERVER_PACKAGES"]

SERVER_PACKAGES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart"}  # module -> package


def require_server_packages() -> None:
    """Raise :class:`HeadstartError` naming the install command when a package the server needs is missing."""
    missing = [package for module, package in SERVER_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise HeadstartError(
            f"headstart serve needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            "installed; install the server extras: pip install 'headstart[serve]'"
        )
