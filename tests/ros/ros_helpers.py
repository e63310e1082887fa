"""Shared pieces of the ROS tests: a private domain per test, and an rclpy client node in the test process."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import clock_sec

_counter = itertools.count()


def fresh_domain() -> int:
    """A ROS_DOMAIN_ID (10..99) that differs between the tests of one run and between parallel runs."""
    return 10 + (os.getpid() * 13 + next(_counter) * 7) % 90


class Client:
    """An rclpy node in its own context on ``domain_id`` (discovery limited to localhost)."""

    def __init__(self, domain_id: int):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from robolearn.ros_nodes.rosenv import use_ros_env

        use_ros_env(domain_id)
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("test_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return predicate()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def call(self, srv_type: Any, name: str, timeout: float = 5.0) -> Any:
        client = self.node.create_client(srv_type, name)
        assert self.spin_until(client.service_is_ready, timeout), f"service {name} not available"
        future = client.call_async(srv_type.Request())
        assert self.spin_until(future.done, timeout), f"service {name} did not answer"
        return future.result()

    def now(self) -> float:
        """The node's ROS clock (s): the time base of the header stamps the graph's nodes write."""
        return clock_sec(self.node)

    def largest_stamp_gap(self, received: list[tuple], start: float, span: float, timeout: float = 5.0) -> float:
        """Largest gap (s) between the messages ``received`` (a subscription appends records whose first item
        is the header stamp, s) stamped in ``(start, start + span]``, counting from ``start`` to its end.

        Spins until a message stamped after the window has arrived (or ``timeout``), so the window is complete.
        A stamp is when the sender made the message: a stall of this test process between reads is not a gap
        (a CI run's 2 cores once held it 0.9 s while the safety node kept sending).
        """
        end = start + span
        self.spin_until(lambda: any(r[0] > end for r in received), timeout)
        inside = sorted(r[0] for r in received if start < r[0] <= end)
        return float(np.diff([start, *inside, end]).max())

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def joint_positions(msg: Any) -> np.ndarray:
    """The joint positions (rad) of a ``joint_states`` message, without the arm's ``gripper`` (closure 0..1)."""
    return np.array([p for n, p in zip(msg.name, msg.position, strict=True) if n != "gripper"], np.float64)
