"""Checkpoints of a training run: one zip file each, written atomically, read without pickle.

``<run_dir>/checkpoints/ckpt_<timesteps, 12 digits>.zip`` holds:

==============  ===========================================================================
``model.zip``   the stable-baselines3 model as ``model.save`` writes it (policy weights and
                optimizer state as ``.pth`` state dicts; SB3's own ``data`` entry) — or, for
                ``sharing: groups``, ``models/<group>.zip``: one such model per bank group
``config.yaml`` the resolved ``TrainConfig`` (env inlined: the run needs no other file)
``meta.json``   ``format``, ``env_id`` (``rudra_v1``), ``rudra_version``, ``algorithm``,
                ``timesteps`` (trained on: the weights have seen exactly this many; with
                groups these are run timesteps, of which each group's model learned from its
                own slots' share), ``n_updates`` (per model: groups update together),
                ``elapsed_s`` (training wall time, all segments), ``learners``, ``groups``
                (``{name: banks}``; groups only), ``reason`` (interval, done, time budget,
                SIGINT, SIGTERM) and ``segments`` (one ``{start, end, reason}`` per
                ``train`` call that led here)
``rng.json``    the generator states: each world's (``RudraVecEnv.rng_state()``), numpy's
                global one (SB3 shuffles minibatches with it), Python's ``random`` and torch's
                (base64 bytes), so a resumed run continues the same random streams
==============  ===========================================================================

Atomic: the zip is written to a temporary file in the same folder, flushed to disk and renamed
over its final name with ``os.replace``; a kill mid-write leaves at most a ``.ckpt-*.tmp`` file,
which readers ignore and the next write removes. The last ``keep`` checkpoints are kept.

Safe to read: ``read_checkpoint`` uses ``zipfile``, ``yaml.safe_load`` and ``json``; the model
is restored with ``load_weights`` (SB3's ``set_parameters``: ``torch.load(weights_only=True)`` of
the ``.pth`` entries; SB3's ``data`` entry, which may hold cloudpickled objects, is not read).
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rudra_env.errors import ConfigError
from training.config import TrainConfig

__all__ = [
    "FORMAT",
    "atomic_write",
    "READABLE_FORMATS",
    "Checkpoint",
    "capture_rng",
    "checkpoint_dir",
    "latest_checkpoint",
    "list_checkpoints",
    "load_weights",
    "model_bytes",
    "read_checkpoint",
    "restore_rng",
    "write_checkpoint",
]

FORMAT = 2
"""Version of the checkpoint layout above (2: ``models/<group>.zip`` may replace ``model.zip``)."""
READABLE_FORMATS = (1, 2)
"""Layouts ``read_checkpoint`` reads (1: ``model.zip`` only)."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back (see the module docstring for each part)."""

    path: Path
    model_zip: bytes | None
    """The SB3 model zip of a shared-policy run (``load_weights(model, ckpt)`` or
    ``MaskablePPO.load(BytesIO(...))``); None for a run with groups."""
    config: TrainConfig
    meta: dict[str, Any]
    rng: dict[str, Any]
    group_models: dict[str, bytes] = field(default_factory=dict)
    """``sharing: groups``: each group's SB3 model zip, by group name (empty otherwise)."""

    @property
    def timesteps(self) -> int:
        return int(self.meta["timesteps"])


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def _name(timesteps: int) -> str:
    return f"ckpt_{timesteps:012d}.zip"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoint files, oldest first (temporary files ignored)."""
    folder = checkpoint_dir(run_dir)
    return sorted(folder.glob("ckpt_*.zip")) if folder.is_dir() else []


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def write_checkpoint(
    run_dir: str | Path,
    model_zip: bytes | Mapping[str, bytes],
    config: TrainConfig,
    meta: Mapping[str, Any],
    rng: Mapping[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``ckpt_<meta['timesteps']>.zip`` atomically; delete all but the last ``keep``.

    ``model_zip``: the model's bytes (``model.zip``), or ``{group: bytes}`` (``models/<group>.zip``
    each) for a run with groups."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".ckpt-*.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    final = folder / _name(int(meta["timesteps"]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        if isinstance(model_zip, Mapping):
            for group, data in model_zip.items():
                zf.writestr(f"models/{group}.zip", data)
        else:
            zf.writestr("model.zip", model_zip)
        zf.writestr("config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        zf.writestr("meta.json", json.dumps({"format": FORMAT, **meta}, indent=1))
        zf.writestr("rng.json", json.dumps(rng))
    atomic_write(final, buf.getvalue(), tmp_prefix=".ckpt-")
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def atomic_write(path: Path, data: bytes, tmp_prefix: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in its folder (named
    ``<tmp_prefix>*.tmp``, default ``.<name>-*.tmp``), flushed to disk, then renamed over
    ``path``; a reader sees the old file or the whole new one, never a part."""
    prefix = f".{path.name}-" if tmp_prefix is None else tmp_prefix
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint file (no pickle); ``ConfigError`` if it is not one of ours."""
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
            groups = sorted(n for n in names if n.startswith("models/") and n.endswith(".zip"))
            missing = {"config.yaml", "meta.json", "rng.json"} - names
            if "model.zip" not in names and not groups:
                missing.add("model.zip")
            if missing:
                raise ConfigError(
                    f"checkpoint {str(p)!r} lacks {sorted(missing)}: not a RUDRA checkpoint"
                )
            model_zip = zf.read("model.zip") if "model.zip" in names else None
            group_models = {n[len("models/") : -len(".zip")]: zf.read(n) for n in groups}
            config = TrainConfig.from_dict(yaml.safe_load(zf.read("config.yaml")))
            meta = json.loads(zf.read("meta.json"))
            rng = json.loads(zf.read("rng.json"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConfigError(f"checkpoint {str(p)!r} cannot be read: {exc}") from exc
    if meta.get("format") not in READABLE_FORMATS:
        raise ConfigError(
            f"checkpoint {str(p)!r} has format {meta.get('format')!r}: expected one of "
            f"{READABLE_FORMATS}"
        )
    return Checkpoint(p, model_zip, config, meta, rng, group_models)


# --------------------------------------------------------------------------- model and RNGs
def model_bytes(model: Any) -> bytes:
    """The SB3 model as the bytes of its ``model.save`` zip."""
    buf = io.BytesIO()
    model.save(buf)
    return buf.getvalue()


def load_weights(model: Any, ckpt: Checkpoint, group: str | None = None) -> None:
    """Load the checkpoint's policy weights and optimizer state into a freshly built ``model``
    of the same config (``torch.load(weights_only=True)``: no pickle), and its counters.

    ``group``: which group's model (``sharing: groups``); None: the shared model."""
    if group is None:
        data = ckpt.model_zip
    else:
        data = ckpt.group_models.get(group)
    if data is None:
        have = sorted(ckpt.group_models) if ckpt.group_models else "one shared model"
        raise ConfigError(
            f"checkpoint {str(ckpt.path)!r} has no model for "
            f"{'the shared policy' if group is None else f'group {group!r}'}: it holds {have}"
        )
    model.set_parameters(io.BytesIO(data), exact_match=True, device=model.device)
    model.num_timesteps = ckpt.timesteps
    # PPO counts gradient updates in this attribute (logged as train/n_updates); restore it so
    # the TensorBoard curve continues instead of restarting at 0.
    model._n_updates = int(ckpt.meta.get("n_updates", 0))


def capture_rng(venv: Any) -> dict[str, Any]:
    """Every generator a run draws from, JSON-serialisable."""
    import torch

    # SB3 shuffles minibatches with numpy's global generator, so it is part of the run's state
    name, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # noqa: NPY002
    version, internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "worlds": venv.rng_state(),
        "numpy_global": [name, key.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), py_gauss],
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = [
            base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()
        ]
    return state


def restore_rng(venv: Any, state: Mapping[str, Any]) -> None:
    """Restore ``capture_rng``'s generators (CUDA's only when the GPU count matches)."""
    import torch

    venv.set_rng_state(state["worlds"])
    name, key, pos, has_gauss, gauss = state["numpy_global"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))  # noqa: NPY002
    version, internal, py_gauss = state["python"]
    random.setstate((version, tuple(internal), py_gauss))
    torch.set_rng_state(_tensor(state["torch"]))
    cuda = state.get("torch_cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([_tensor(s) for s in cuda])


def _tensor(b64: str) -> Any:
    import torch

    return torch.from_numpy(np.frombuffer(base64.b64decode(b64), dtype=np.uint8).copy())
