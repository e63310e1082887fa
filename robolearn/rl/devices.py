"""Torch devices from a config's ``device`` setting: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

Every config that runs torch (base-policy training, refinement, HIL, evaluation, the reward classifier, the
ROS policy node) takes such a setting, checks its spelling when the config loads (:func:`check_device`, which
needs no accelerator: a preset naming ``cuda`` loads anywhere) and turns it into a ``torch.device`` when the
run starts (:func:`resolve_device`, which refuses a device this machine does not have, in one line).

``auto`` picks ``cuda`` when ``torch.cuda.is_available()``, else ``mps`` when the Apple GPU is available, else
``cpu``. It is the default of those configs: on a machine whose torch sees no accelerator (the CPU build of
torch that ``make`` installs, a laptop) it resolves to ``cpu``, so the default changes nothing there and uses
the GPU where there is one. The simulator stays on the CPU either way (MuJoCo); policies take numpy
observations and return numpy actions on every device.

This module lives in ``robolearn.rl``, the lowest layer that refinement, HIL, the application modules and the
ROS nodes may all import (``robolearn.core`` imports no torch; ``robolearn.policies`` imports only ``core``,
so its functions take a concrete device from their callers). It imports torch only when a function needs it:
:func:`check_device` runs in a process that never loads torch (the ROS policy node whose policy runs in an
inference process, or a named policy).
"""

from __future__ import annotations

import itertools
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
"""The spellings of a device setting (``cuda:N``: the N-th CUDA device, N = 0, 1, ...)."""
DEVICE_HELP = "torch device: auto (cuda if available, else mps, else cpu), cpu, cuda, cuda:N or mps"
"""One line for ``--help`` texts."""
_SPEC = re.compile(r"auto|cpu|mps|cuda(?::(\d+))?")


def check_device(spec: str | torch.device) -> str:
    """``spec`` when it is a device setting (spelling only: whether this machine has it is not checked), as a
    string; a one-line ValueError naming the valid values otherwise (``gpu``, ``cuda:x``)."""
    torch = sys.modules.get("torch")  # a torch.device exists only once torch is imported
    if torch is not None and isinstance(spec, torch.device):
        return str(spec)
    if not isinstance(spec, str) or not _SPEC.fullmatch(spec):
        raise ValueError(f"device {spec!r} is not one of {', '.join(DEVICE_CHOICES)} (N = 0, 1, ...)")
    return spec


def mps_available() -> bool:
    """Whether this torch has the Apple GPU (MPS) backend and it is usable here."""
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def auto_device() -> torch.device:
    """``cuda`` if torch sees a CUDA GPU, else ``mps`` if available, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if mps_available():
        return torch.device("mps", 0)
    return torch.device("cpu")


def _cpu_build() -> str:
    import torch

    return ", a CPU-only build" if torch.version.cuda is None else ""


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` of a device setting (see the module docstring); a ``torch.device`` is returned as it is.

    ``cuda`` resolves to the current CUDA device (``cuda:0`` unless ``CUDA_VISIBLE_DEVICES`` or the caller says
    otherwise), so it compares equal to the device of the tensors put there.

    Raises:
        ValueError: one line, for a misspelt setting (the valid values named) or a device this machine lacks
            (``cuda`` where ``torch.cuda.is_available()`` is False, ``cuda:3`` on a one-GPU machine, ``mps``
            off Apple silicon), naming what to use instead.
    """
    import torch

    if isinstance(spec, torch.device):
        return spec
    match = _SPEC.fullmatch(check_device(spec))
    assert match is not None
    if spec == "auto":
        return auto_device()
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not mps_available():
            raise ValueError("device 'mps' requested but the Apple GPU (MPS) is not available to this torch; "
                             "use device=auto or device=cpu")
        return torch.device("mps", 0)
    if not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available to this torch ({torch.__version__}"
                         f"{_cpu_build()}); use device=auto (it picks the CPU here) or device=cpu")
    count = torch.cuda.device_count()
    index = int(match.group(1)) if match.group(1) is not None else torch.cuda.current_device()
    if index >= count:
        raise ValueError(f"device {spec!r} requested but this machine has {count} CUDA device(s) "
                         f"(cuda:0 to cuda:{count - 1}); use one of those or device=auto")
    return torch.device("cuda", index)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (or buffer); the CPU for a module with neither."""
    import torch

    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")
