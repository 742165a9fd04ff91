"""Where this process stands in a multi-process launch (torchrun, `accelerate launch`): rank, world, device.

    info = launch_info()        # from RANK / WORLD_SIZE / LOCAL_RANK; one process when they are unset
    device = device_for(info)   # cuda:LOCAL_RANK when CUDA is present, else cpu

The benchmark runner and the CoT build shard their work by it (one shard per process, each on its own
GPU), and rank 0 waits for the others with `wait_until` (polling the files the others write, so no
process group is needed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class LaunchError(ValueError):
    """The launcher's variables are unreadable, or the other processes did not finish in time."""


@dataclass(frozen=True)
class LaunchInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _integer(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise LaunchError(f"{name}={text!r} is not an integer (set by torchrun / accelerate launch)") from None


def launch_info(environ: Mapping[str, str] | None = None) -> LaunchInfo:
    """This process's rank, world size and local rank, as torchrun and accelerate set them."""
    environ = os.environ if environ is None else environ
    world = _integer(environ, "WORLD_SIZE", 1)
    rank = _integer(environ, "RANK", 0)
    local = _integer(environ, "LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise LaunchError(f"RANK={rank}, LOCAL_RANK={local}, WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE "
                          "and LOCAL_RANK >= 0")
    return LaunchInfo(rank, world, local)


def device_for(info: LaunchInfo, cuda_available: bool | None = None) -> str:
    """cuda:LOCAL_RANK when CUDA is present (one GPU per process), else cpu."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return f"cuda:{info.local_rank}" if cuda_available else "cpu"


def process_device(requested: str | None, info: LaunchInfo, cuda_available: bool | None = None) -> str | None:
    """The device a launched process uses: an explicit cuda:N or cpu as given; "cuda" or nothing becomes
    this process's own GPU (cpu without CUDA) when several processes run; one process keeps `requested`."""
    if not info.distributed or (requested is not None and requested != "cuda"):
        return requested
    return device_for(info, cuda_available)


def wait_until(done: Callable[[], list[str]], timeout: float, what: str, interval: float = 1.0) -> None:
    """Poll `done()` (what is still missing; [] when everything is there) until it returns [] or `timeout`
    seconds pass; then LaunchError in one line naming what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        missing = done()
        if not missing:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise LaunchError(f"waited {timeout:g} s for {what}; still missing: {shown}")
        time.sleep(interval)
