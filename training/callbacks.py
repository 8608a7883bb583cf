"""The trainer's own stable-baselines3 callbacks: checkpoints, stopping, a progress bar.

Each overrides SB3's hooks (``_on_training_start``, ``_on_rollout_start``, ``_on_step``...);
``training.train`` attaches them, plus any extra ones, in one ``CallbackList``.

Checkpoints are written at rollout starts: there the model has just finished its update, so
its weights have been trained on exactly ``num_timesteps`` timesteps (mid-rollout, the steps
collected since the last update would be counted but not yet learned from).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

__all__ = ["Checkpointer", "EnvTimeShare", "ProgressBar", "RunClock", "StopRequest", "Stopper"]


@dataclass
class StopRequest:
    """Why training should stop early (None: it should not). Set by a signal or the budget."""

    reason: str | None = None

    @contextlib.contextmanager
    def on_signals(self, *signums: int) -> Iterator[None]:
        """While inside, the first of ``signums`` (e.g. SIGINT, SIGTERM) sets ``reason`` to its
        name, so training stops at its next step and the trainer writes a checkpoint; a second
        SIGINT raises ``KeyboardInterrupt`` at once. Outside the main thread: nothing is
        installed (Python delivers signals to the main thread only)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.reason = signal.Signals(signum).name
            print(
                f"\n{self.reason}: stopping at the next step; writing a checkpoint first",
                file=sys.stderr,
                flush=True,
            )

        previous = {s: signal.signal(s, handler) for s in signums}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


class RunClock:
    """A run's training wall time: ``spent_s`` of the earlier segments plus this segment's,
    counted from construction (or the last ``restart``)."""

    def __init__(self, spent_s: float = 0.0) -> None:
        self.spent_s = spent_s
        self._t0 = time.monotonic()

    def restart(self) -> None:
        """Count this segment from now."""
        self._t0 = time.monotonic()

    def elapsed_s(self) -> float:
        """Training wall time of the whole run so far (earlier segments included)."""
        return self.spent_s + time.monotonic() - self._t0


class Stopper(BaseCallback):
    """Ends ``learn`` at the next step once ``stop.reason`` is set or the wall-clock budget
    (``budget_s`` over the whole run; ``spent_s`` already used by earlier segments) is spent."""

    def __init__(self, stop: StopRequest, budget_s: float | None, spent_s: float = 0.0) -> None:
        super().__init__()
        self.stop = stop
        self.budget_s = budget_s
        self.clock = RunClock(spent_s)
        self.stopped = False
        """True once this callback has ended ``learn`` early."""

    def elapsed_s(self) -> float:
        """Training wall time of the whole run so far (earlier segments included)."""
        return self.clock.elapsed_s()

    def _on_training_start(self) -> None:
        self.clock.restart()

    def _on_step(self) -> bool:
        if self.budget_s is not None and self.stop.reason is None:
            if self.elapsed_s() >= self.budget_s:
                self.stop.reason = "time budget"
        self.stopped = self.stop.reason is not None
        return not self.stopped


class Checkpointer(BaseCallback):
    """Calls ``write(timesteps, reason)`` at the first rollout start past each multiple of
    ``every`` timesteps, and tracks ``trained_timesteps`` (the count at the last rollout start:
    what the weights have learned from)."""

    def __init__(self, write: Callable[[int, str], Path], every: int) -> None:
        super().__init__()
        self.write = write
        self.every = every
        self.trained_timesteps = 0
        self.written: list[Path] = []
        self._next = every

    def _on_training_start(self) -> None:
        self.trained_timesteps = self.model.num_timesteps
        self._next = (self.trained_timesteps // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        self.trained_timesteps = self.model.num_timesteps
        if self.trained_timesteps >= self._next:
            self.written.append(self.write(self.trained_timesteps, "interval"))
            self._next = (self.trained_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True


class ProgressBar(BaseCallback):
    """A tqdm bar on stderr over timesteps (ETA from the rate since this segment started),
    showing the mean episode reward per bank of the latest episodes (SB3's
    ``ep_info_buffer``: each entry is one bank's episode return). With no timestep total
    (a time budget only) it counts timesteps without an ETA.

    ``episodes``: where the latest episodes come from (default: the model's
    ``ep_info_buffer``); with one model per bank group, the trainer passes every group's."""

    def __init__(
        self, total: int | None, episodes: Callable[[], Iterable[Mapping[str, Any]]] | None = None
    ) -> None:
        super().__init__()
        self.total = total
        self.episodes = episodes
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(
            total=self.total,
            initial=self.model.num_timesteps,
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def _on_step(self) -> bool:
        assert self.bar is not None, "ProgressBar: _on_training_start not called"
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_rollout_end(self) -> None:
        episodes = list(self.episodes() if self.episodes else self.model.ep_info_buffer or [])
        if self.bar is not None and episodes:
            mean = float(np.mean([e["r"] for e in episodes]))
            self.bar.set_postfix_str(f"ep_reward/bank={mean:.3f}", refresh=False)

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EnvTimeShare(BaseCallback):
    """The env's share of training wall time: the time ``venv`` spent in ``reset``,
    ``step_wait`` and ``action_masks`` (``RudraVecEnv.env_seconds``: the core, observations,
    masks, fixed agents) over the wall time since training started, logged as
    ``rudra/env_time_share`` at every rollout end (the rest is the policy's forward passes,
    SB3's bookkeeping and the updates)."""

    def __init__(self, venv: Any) -> None:
        super().__init__()
        self.venv = venv
        self._t0 = self._env0 = 0.0
        self._final: tuple[float, float] | None = None

    def _on_training_start(self) -> None:
        self._t0, self._env0 = time.perf_counter(), self.venv.env_seconds
        self._final = None

    def _on_training_end(self) -> None:
        self._final = self.seconds()

    def seconds(self) -> tuple[float, float]:
        """(env seconds, wall seconds) from training start to now, or to its end once ended."""
        if self._final is not None:
            return self._final
        return self.venv.env_seconds - self._env0, time.perf_counter() - self._t0

    def share(self) -> float:
        env_s, wall_s = self.seconds()
        return env_s / wall_s if wall_s > 0 else 0.0

    def _on_rollout_end(self) -> None:
        self.logger.record("rudra/env_time_share", self.share())

    def _on_step(self) -> bool:
        return True
