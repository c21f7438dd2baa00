"""The Hugging Face Hub, as seen from here: reachable or not, and what its local cache already holds.

Used by the model loaders (``peftlab.models``) and the doctor's command line; nothing here downloads.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from peftlab.parameters import ParameterError


class OfflineError(ParameterError, RuntimeError):
    """A Hub checkpoint was asked for, but the Hub cannot be reached from here (a parameter to change:
    its message says to what; a RuntimeError too, as it was before ParameterError existed)."""


def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Can the Hugging Face Hub be reached? Returns ``(ok, reason)`` without downloading anything."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False, "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or endpoint
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        return False, f"cannot connect to {host}: {error}"
    return True, ""


def in_hub_cache(repo_id: str) -> bool:
    """True when ``repo_id``'s ``config.json`` is already in the local Hub cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001  (an invalid repo id is simply "not cached")
        return False
