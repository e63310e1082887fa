"""A policy that runs in its own process: inference without the control process's interpreter lock.

In one Python process the inference worker and the executor share the GIL: a diffusion policy spends
most of its chunk (milliseconds) in Python-level module calls and scheduler steps, and the executor
thread that must answer the next observation waits for the lock (and, when the worker is preempted
while holding it, for the worker to be scheduled again). :class:`RemotePolicy` moves the policy into a
child process (a fresh interpreter, ``python -m robolearn.ros_nodes.remote_policy``, on one end of a socket
pair: the parent holds DDS threads, which ``fork`` would not carry over, and ``multiprocessing``'s spawn
would re-import the node's main module) and keeps
the :class:`~robolearn.core.protocols.Policy` calls (``act``, ``reset``, ``observe`` when the policy has it; with
``prepare``, a policy's ``prepare`` runs in the child right after each ``act`` reply, between commands),
so :class:`~robolearn.ros_nodes.policy_runner.PolicyRunner` uses it unchanged. Calls block the calling
thread (the runner's worker) in a pipe read, which releases the GIL.

The child runs at normal scheduling priority (a real-time parent's class is not inherited) with one
torch thread. When it dies, calls raise :class:`RuntimeError` naming the exit code; the runner reports
it on the timing topic and the node keeps running its safety fallback path.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

OPTIONAL = ("observe",)
"""Policy methods taking an observation batch that the proxy has exactly when the served policy does."""


def load_policy(spec: str, env_id: str, noise: float = 0.0, seed: int = 0, device: str = "cpu") -> Any:
    """A named policy (``expert``, ``random``, ``zero``) or a base / refined policy directory, for ``env_id``; a
    directory's networks on ``device`` (a device setting: ``auto``, ``cpu``, ``cuda[:N]``, ``mps``)."""
    from robolearn.policy_factory import NAMED_POLICIES
    from robolearn.policy_factory import load_policy as load

    if spec in NAMED_POLICIES and noise:
        spec = f"{spec}:noise={noise}"
    return load(spec, env_id, seed=seed, device=device)


def _serve(conn: Connection, spec: str, env_id: str, noise: float, seed: int, prepare: bool = False,
           device: str = "cpu") -> None:
    """The child: load the policy, then answer ``(op, batch)`` requests until the pipe closes. With ``prepare``,
    a policy's ``prepare`` runs right after each ``act`` reply is sent (between commands, no extra round trip)."""
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass
    try:
        import torch

        torch.set_num_threads(1)
        policy = load_policy(spec, env_id, noise, seed, device)
    except Exception as err:  # noqa: BLE001  (sent to the parent, which raises it)
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    shapes = {k: tuple(int(n) for n in v) for k, v in (getattr(policy, "shapes", None) or {}).items()}
    has = {op: hasattr(policy, op) for op in (*OPTIONAL, "prepare", "predict_ahead")}
    conn.send(("ready", has | {"shapes": shapes}))
    prepare = prepare and hasattr(policy, "prepare")
    while True:
        try:
            op, batch = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "act":
                conn.send(("ok", np.asarray(policy.act(batch))))
                if prepare:
                    policy.prepare(batch)
            elif op in OPTIONAL:
                getattr(policy, op)(batch)
                conn.send(("ok", None))
            elif op == "reset":
                policy.reset()
                conn.send(("ok", None))
            elif op == "predict_ahead" and hasattr(policy, "predict_ahead"):
                conn.send(("ok", int(policy.predict_ahead())))
            else:
                conn.send(("error", f"unknown request {op!r}"))
        except Exception as err:  # noqa: BLE001
            conn.send(("error", f"{type(err).__name__}: {err}"))


class RemotePolicy:
    """``load_policy(spec, env_id, noise, seed, device)`` served from a child process.

    Args:
        spec, env_id, noise, seed, device: as :func:`load_policy` (the policy's networks live on ``device`` in
            the child; observations and actions cross the pipe as numpy).
        timeout: seconds to wait for the child to load the policy.
        prepare: run the policy's ``prepare`` (when it has one) in the child after each ``act`` reply.

    Raises:
        RuntimeError: the child could not load the policy (the child's error is in the message), or did
            not answer within ``timeout``.
    """

    def __init__(self, spec: str, env_id: str, noise: float = 0.0, seed: int = 0, timeout: float = 120.0,
                 prepare: bool = False, device: str = "cpu"):
        ours, theirs = socket.socketpair()
        cmd = [sys.executable, "-m", __name__, "--fd", str(theirs.fileno()), "--spec", spec, "--env-id", env_id,
               "--noise", repr(float(noise)), "--seed", str(int(seed)), "--device", str(device)]
        cmd += ["--prepare"] if prepare else []
        self._proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),))
        theirs.close()
        self._conn = Connection(ours.detach())
        if not self._conn.poll(timeout):
            self.close()
            raise RuntimeError(f"the inference process did not load policy {spec!r} within {timeout:g} s")
        kind, value = self._recv()
        if kind != "ready":
            self.close()
            raise RuntimeError(f"the inference process could not load policy {spec!r}: {value}")
        for op in OPTIONAL:  # the proxy has observe exactly when the policy does
            if value.get(op):
                setattr(self, op, lambda obs, op=op: self._call(op, obs))
        if value.get("predict_ahead"):  # the proxy has predict_ahead exactly when the policy does
            self.predict_ahead = lambda: self._call("predict_ahead")
        self.shapes: dict[str, tuple[int, ...]] = value.get("shapes") or {}
        """The served policy's observation keys and per-frame shapes (empty when it does not say)."""
        self.prepares = bool(prepare and value.get("prepare"))
        """The served policy's ``prepare`` runs in the child after each ``act``."""

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _recv(self) -> tuple[str, Any]:
        try:
            return self._conn.recv()
        except (EOFError, OSError) as err:
            raise RuntimeError(f"the inference process exited (code {self._proc.poll()})") from err

    def _call(self, op: str, batch: dict[str, np.ndarray] | None = None) -> Any:
        try:
            self._conn.send((op, batch))
        except (BrokenPipeError, OSError) as err:
            raise RuntimeError(f"the inference process exited (code {self._proc.poll()})") from err
        kind, value = self._recv()
        if kind != "ok":
            raise RuntimeError(value)
        return value

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action chunk ``(1, Ta, Da)`` (or ``(1, Da)``) for a batch of one observation."""
        return self._call("act", obs)

    def reset(self) -> None:
        self._call("reset")

    def close(self) -> None:
        """Stop the child (closing the pipe ends its loop; terminate if it does not exit)."""
        self._conn.close()
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=2.0)


def main(argv: list[str] | None = None) -> None:
    """The child's entry point (started by :class:`RemotePolicy`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="our end of the parent's socket pair")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--env-id", required=True)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prepare", action="store_true", help="run the policy's prepare after each act")
    parser.add_argument("--device", default="cpu", help="torch device of a policy directory's networks")
    args = parser.parse_args(argv)
    _serve(Connection(args.fd), args.spec, args.env_id, args.noise, args.seed, args.prepare, args.device)


if __name__ == "__main__":
    main()
