"""Wind: a steady per-episode wind plus discrete "1 - cosine" gusts (the MIL-F-8785C gust shape).

The wind velocity ``w(t)`` (m/s, world frame) acts on the vehicle through the rotor drag of
:meth:`~robolearn.sim.quadrotor.model.QuadrotorParams.linear_drag`: ``F = k * (w - v)`` (N).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class WindModel:
    """Wind parameters, read at every reset (domain randomization may overwrite them between episodes)."""

    mean_max: float = 0.0
    """Largest steady wind speed (m/s); each episode draws a horizontal direction and a speed below it."""
    gust_max: float = 0.0
    """Largest gust amplitude (m/s)."""
    gust_rate: float = 0.5
    """Mean number of gusts per second (Poisson arrivals)."""
    gust_duration: tuple[float, float] = (0.5, 2.0)
    """Range of gust durations (s)."""
    vertical_fraction: float = 0.3
    """Gust direction: vertical component relative to the horizontal one (at most)."""


@dataclass
class WindState:
    """One episode's wind: the steady part and the active gusts."""

    mean: np.ndarray
    rng: np.random.Generator
    gusts: list[tuple[float, float, np.ndarray]] = field(default_factory=list)
    """Active gusts as ``(start time s, duration s, peak velocity (3,) m/s)``."""
    time: float = 0.0

    @classmethod
    def sample(cls, model: WindModel, rng: np.random.Generator) -> WindState:
        """Draw the steady wind; gusts use a generator seeded from ``rng`` (reproducible from the seed)."""
        if model.mean_max < 0 or model.gust_max < 0 or model.gust_rate < 0:
            raise ValueError(f"wind speeds and rates must be >= 0, got {model}")
        heading = rng.uniform(-np.pi, np.pi)
        speed = rng.uniform(0.0, model.mean_max)
        mean = np.array([np.cos(heading), np.sin(heading), 0.0]) * speed
        return cls(mean=mean, rng=np.random.default_rng(rng.integers(2**63)))

    def step(self, model: WindModel, dt: float) -> np.ndarray:
        """Advance ``dt`` seconds; the wind velocity ``(3,)`` m/s at the new time."""
        self.time += dt
        if not self.gusts and model.gust_max <= 0:  # steady wind only (the same value as below, sooner)
            return self.mean.copy()
        if model.gust_max > 0 and self.rng.random() < model.gust_rate * dt:
            direction = self.rng.normal(size=3)
            direction[2] *= model.vertical_fraction
            direction /= max(np.linalg.norm(direction), 1e-9)
            peak = direction * self.rng.uniform(0.0, model.gust_max)
            self.gusts.append((self.time, self.rng.uniform(*model.gust_duration), peak))
        self.gusts = [g for g in self.gusts if self.time < g[0] + g[1]]
        wind = self.mean.copy()
        for start, duration, peak in self.gusts:
            wind += peak * 0.5 * (1.0 - np.cos(2.0 * np.pi * (self.time - start) / duration))
        return wind
