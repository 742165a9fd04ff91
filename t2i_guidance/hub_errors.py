"""One clear line for the hub failures a first run meets: a gated model, a wrong id, no network.

    try:
        pipeline = load_pipeline(name, dtype)
    except Exception as error:
        message = hub_error_message(error, name)
        if message is None:
            raise
        raise SystemExit(message) from None

diffusers and transformers often re-raise the hub's exception as a plain OSError, so the cause chain is
searched for it.
"""

from __future__ import annotations

import os


def hub_error_message(error: BaseException, repo_id: str) -> str | None:
    """The one-line message for a hub failure anywhere in `error`'s cause chain; None for other errors."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    for cause in _cause_chain(error):
        if isinstance(cause, GatedRepoError):  # a subclass of RepositoryNotFoundError: checked first
            return (f"{repo_id} is gated: accept its licence at https://huggingface.co/{repo_id} and log in "
                    "(hf auth login, or HF_TOKEN) before loading it")
        if isinstance(cause, RepositoryNotFoundError):
            return (f"{repo_id} not found on the hub: check the id (or, for a private model, log in with "
                    "hf auth login)")
        if isinstance(cause, LocalEntryNotFoundError):
            offline = " HF_HUB_OFFLINE is set;" if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") else ""
            return (f"{repo_id} is not in the local hub cache and cannot be downloaded:{offline} connect to the "
                    "hub once (unset HF_HUB_OFFLINE) or pass a local folder")
    return None


def _cause_chain(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
