"""``TorchPolicyAgent``: a trained policy network, loaded as weights only.

Checkpoints
-----------
* **stable-baselines3 ``.zip``** (PPO, A2C, MaskablePPO with an MLP policy): the archive is opened
  with ``zipfile``; ``policy.pth`` is read with ``torch.load(..., weights_only=True)``, and the
  JSON ``data`` entry is parsed as text for the activation function. SB3's own ``load`` is never
  called (it unpickles arbitrary objects). The architecture is inferred from the state-dict
  shapes: ``mlp_extractor.policy_net.{0,2,...}`` hidden layers and ``action_net`` logits.
* **plain state dict** (``.pt`` / ``.pth``, loaded with ``weights_only=True``) with an
  architecture description (``PolicyArch``: a dict, or a JSON file; default the sidecar
  ``<checkpoint>.json``). Keys are those of ``torch.nn.Sequential`` (``0.weight``, ``2.weight``,
  ...) or SB3's policy keys. ``TorchPolicyAgent.save`` writes both files.

Inputs (``PolicyArch.inputs``): ``"observation"`` feeds the env's observation vector (a policy
trained on ``training.vec_env.RudraVecEnv`` or another ``Box`` observation: SB3's ``MlpPolicy``);
``"action_mask+observation"`` feeds the mask then the observation, concatenated — what SB3's
``MultiInputPolicy`` sees for the PettingZoo env's ``Dict`` observation (its ``CombinedExtractor``
flattens the Dict's entries in the Dict's order, and gymnasium sorts a Dict's keys);
``"observation+action_mask"`` is the other order (a Dict built from an ``OrderedDict``);
``"auto"`` decides per call from the first layer's width against the env's observation and mask
widths. For SB3 zips the layout is read from ``observation_space`` in the JSON ``data`` entry
(its ``_shape`` for a ``Box``, its ``spaces`` text for a ``Dict``; the pickled
``:serialized:`` field is never read) and checked against the first layer's width; a zip
without it gets ``"auto"``. An env whose widths do not fit the checkpoint is an ``InputError``
that says which width differs and, given the env's parameters, which K it implies.
Observation normalisation (``VecNormalize``) is not applied.

Acting: logits of masked-out actions are set to -inf, then the agent takes the argmax
(``deterministic=True``) or samples from the softmax with its own seeded generator. A bank with no
legal action HOLDs. torch is imported lazily, so ``agents`` imports without it.
"""

from __future__ import annotations

import io
import json
import numbers
import re
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import ObservationAgent
from rudra_env.core.observe import SLOT_FEATURES, ObservationLayout
from rudra_env.core.params import Params
from rudra_env.errors import ConfigError, InputError

__all__ = ["ACTIVATIONS", "PolicyArch", "TorchPolicyAgent", "load_weights"]

ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "gelu": "GELU",
    "silu": "SiLU",
    "sigmoid": "Sigmoid",
    "identity": "Identity",
}
"""Activation names accepted in ``PolicyArch.activation`` -> ``torch.nn`` class names."""
INPUTS = ("observation", "action_mask+observation", "observation+action_mask", "auto")
"""Allowed ``PolicyArch.inputs``: the env's entries fed to the network, in order (see above)."""


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            "TorchPolicyAgent needs torch: pip install -c constraints.txt "
            "torch==2.13.0 (or the project's [train] extra)"
        ) from None
    return torch


@dataclass(frozen=True)
class PolicyArch:
    """Architecture of an MLP policy: obs -> hidden layers (activation after each) -> logits."""

    obs_dim: int
    """Width of the network's input: the observation size, plus the mask size (= n_actions) when
    ``inputs`` names ``action_mask``."""
    hidden_sizes: tuple[int, ...]
    """Width of each hidden layer (may be empty: a linear policy)."""
    n_actions: int
    """Number of logits (the env's A)."""
    activation: str = "tanh"
    """One of ``ACTIVATIONS`` (SB3's default for PPO/A2C is tanh)."""
    inputs: str = "observation"
    """One of ``INPUTS``: "observation", "action_mask+observation", "observation+action_mask",
    or "auto" (chosen per call by the env's widths)."""

    def __post_init__(self) -> None:
        def whole(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1

        for name in ("obs_dim", "n_actions"):
            v = getattr(self, name)
            if not whole(v):
                raise ConfigError(f"arch.{name} = {v!r} is not allowed: expected an integer >= 1")
            object.__setattr__(self, name, int(v))
        for k, h in enumerate(self.hidden_sizes):
            if not whole(h):
                raise ConfigError(
                    f"arch.hidden_sizes[{k}] = {h!r} is not allowed: expected an integer >= 1"
                )
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"arch.activation = {self.activation!r} is not allowed: expected "
                f"one of {sorted(ACTIVATIONS)}"
            )
        if self.inputs not in INPUTS:
            raise ConfigError(
                f"arch.inputs = {self.inputs!r} is not allowed: expected one of {INPUTS}"
            )
        if "action_mask" in self.inputs and self.obs_dim <= self.n_actions:
            raise ConfigError(
                f"arch.obs_dim = {self.obs_dim} is not allowed with inputs = {self.inputs!r}: "
                f"the {self.n_actions}-wide action mask leaves no room for the observation"
            )

    @property
    def keys(self) -> tuple[str, ...] | None:
        """The env's entries fed to the network, in order (None for ``"auto"``)."""
        return None if self.inputs == "auto" else tuple(self.inputs.split("+"))

    @property
    def observation_width(self) -> int | None:
        """Width of the observation the policy was trained on (None for ``"auto"``)."""
        if self.keys is None:
            return None
        return self.obs_dim - (self.n_actions if "action_mask" in self.keys else 0)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PolicyArch:
        allowed = ("obs_dim", "hidden_sizes", "n_actions", "activation", "inputs")
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise ConfigError(
                f"unknown key 'arch.{unknown[0]}': allowed keys: {', '.join(allowed)}"
            )
        missing = [k for k in ("obs_dim", "hidden_sizes", "n_actions") if k not in data]
        if missing:
            raise ConfigError(
                f"arch.{missing[0]} is missing: a plain state dict needs obs_dim, "
                "hidden_sizes and n_actions"
            )
        hs = data["hidden_sizes"]
        if isinstance(hs, str) or not hasattr(hs, "__iter__"):
            raise ConfigError(
                f"arch.hidden_sizes = {hs!r} is not allowed: expected a list of integers"
            )
        return cls(
            obs_dim=data["obs_dim"],
            hidden_sizes=tuple(hs),
            n_actions=data["n_actions"],
            activation=data.get("activation", "tanh"),
            inputs=data.get("inputs", "observation"),
        )

    @classmethod
    def load(cls, arch: PolicyArch | Mapping[str, Any] | str | Path) -> PolicyArch:
        """From a ``PolicyArch``, a mapping or a JSON file."""
        if isinstance(arch, PolicyArch):
            return arch
        if isinstance(arch, Mapping):
            return cls.from_mapping(arch)
        p = Path(arch)
        if not p.is_file():
            raise ConfigError(f"arch = {str(arch)!r} is not an existing JSON file")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"arch = {str(arch)!r} is not valid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"arch = {str(arch)!r} holds {type(data).__name__}: expected a JSON object"
            )
        return cls.from_mapping(data)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d


# ----------------------------------------------------------------------------- loading
def _safe_load(data: bytes | str | Path, what: str) -> dict[str, Any]:
    torch = _torch()
    import pickle

    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        sd = torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(
            f"{what} holds more than tensors and was refused (loaded with "
            f"weights_only=True, nothing unpickled): {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{what} is not a torch weights file: {exc}") from None
    if not isinstance(sd, Mapping) or not all(hasattr(v, "shape") for v in sd.values()):
        raise InputError(
            f"{what} holds {type(sd).__name__}: expected a state dict {{name: tensor}}"
        )
    return dict(sd)


def _sb3_data(data_json: bytes | None) -> Mapping[str, Any]:
    """The JSON ``data`` entry of an SB3 zip as a mapping (empty if absent or not JSON)."""
    if data_json is None:
        return {}
    try:
        data = json.loads(data_json)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, Mapping) else {}


def _sb3_activation(data: Mapping[str, Any]) -> str:
    """Activation from ``policy_kwargs.activation_fn`` of an SB3 zip's JSON ``data``."""
    kwargs = data.get("policy_kwargs") or {}
    text = kwargs.get("activation_fn") if isinstance(kwargs, Mapping) else None
    if not text:
        return "tanh"
    m = re.search(r"\.(\w+)'>$", str(text))
    cls_name = m.group(1) if m else str(text)
    for name, torch_name in ACTIVATIONS.items():
        if torch_name == cls_name:
            return name
    raise ConfigError(
        f"policy_kwargs.activation_fn = {text!r} in the checkpoint is not "
        f"supported: expected one of {sorted(ACTIVATIONS.values())}"
    )


_DICT_ENTRY = re.compile(r"'(\w+)':\s*(\w+)\(")
_BOX_SHAPE = re.compile(r"Box\([^()]*\((\d+(?:,\s*\d+)*),?\)")


def _sb3_observation(data: Mapping[str, Any], what: str) -> list[tuple[str, int]] | None:
    """``[(entry, width), ...]`` of the checkpoint's observation, in the order SB3 flattens it.

    Read from the text of ``observation_space`` in the JSON ``data`` (``_shape`` of a ``Box``;
    the ``spaces`` repr of a ``Dict``, whose order is the order ``CombinedExtractor``
    concatenates in); the pickled ``:serialized:`` field is never read. A Box is the entry
    ``"observation"``. None when the JSON does not describe the space.
    """
    space = data.get("observation_space")
    if not isinstance(space, Mapping):
        return None
    kind = str(space.get(":type:", ""))
    if kind.endswith(".Box'>"):
        shape = space.get("_shape")
        if not isinstance(shape, list) or len(shape) != 1:
            raise InputError(
                f"{what} was trained on a Box observation of shape {shape}: "
                "TorchPolicyAgent feeds the env's flat observation, shape (D,)"
            )
        return [("observation", int(shape[0]))]
    if kind.endswith(".Dict'>") and isinstance(space.get("spaces"), str):
        text = space["spaces"]
        entries = []
        for m in _DICT_ENTRY.finditer(text):
            name, cls = m.group(1), m.group(2)
            shape = _BOX_SHAPE.match(text, m.end() - len(cls) - 1)
            if name not in ("observation", "action_mask") or shape is None or "," in shape[1]:
                raise InputError(
                    f"{what} was trained on a Dict observation {text}: TorchPolicyAgent "
                    "feeds only the env's 'action_mask' and 'observation' vectors"
                )
            entries.append((name, int(shape.group(1))))
        return entries or None
    return None


def _sb3_inputs(data: Mapping[str, Any], layers: list[tuple[Any, Any]], what: str) -> str:
    """``PolicyArch.inputs`` of an SB3 checkpoint, checked against its first layer's width."""
    entries = _sb3_observation(data, what)
    if entries is None:
        return "auto"
    width = int(layers[0][0].shape[1])
    n_actions = int(layers[-1][0].shape[0])
    described = " + ".join(f"{w} ({k})" for k, w in entries)
    if sum(w for _, w in entries) != width:
        raise InputError(
            f"{what}: the first layer takes {width} inputs but the checkpoint's "
            f"observation_space gives {described} = {sum(w for _, w in entries)}"
        )
    if dict(entries).get("action_mask", n_actions) != n_actions:
        raise InputError(
            f"{what}: the action_mask entry of the observation is {dict(entries)['action_mask']} "
            f"wide but the policy has {n_actions} actions"
        )
    if "observation" not in dict(entries):
        raise InputError(
            f"{what} was trained on {described} without an 'observation' entry: "
            "TorchPolicyAgent feeds the env's observation"
        )
    return "+".join(k for k, _ in entries)


def _layers(sd: Mapping[str, Any], what: str) -> list[tuple[Any, Any]]:
    """(weight, bias) of each Linear layer in order, from SB3 or ``nn.Sequential`` keys."""

    def numbered(prefix: str) -> list[tuple[Any, Any]]:
        idx = sorted(
            {
                int(m.group(1))
                for k in sd
                if (m := re.fullmatch(re.escape(prefix) + r"(\d+)\.weight", k))
            }
        )
        return [(sd[f"{prefix}{i}.weight"], sd[f"{prefix}{i}.bias"]) for i in idx]

    if "action_net.weight" in sd:
        extra = [k for k in sd if "features_extractor." in k]
        if extra:
            raise InputError(
                f"{what} has a learned features extractor ({extra[0]}): only "
                "Flatten/Combined (parameter-free) extractors are supported"
            )
        return [
            *numbered("mlp_extractor.policy_net."),
            (sd["action_net.weight"], sd["action_net.bias"]),
        ]
    layers = numbered("")
    if not layers or len(layers) * 2 != len(sd):
        raise InputError(
            f"{what} has keys {sorted(sd)[:6]}...: expected nn.Sequential keys "
            "('0.weight', '0.bias', '2.weight', ...) or SB3 policy keys "
            "('mlp_extractor.policy_net.0.weight', 'action_net.weight', ...)"
        )
    return layers


def load_weights(
    path: str | Path, arch: PolicyArch | Mapping[str, Any] | str | Path | None = None
) -> tuple[list[tuple[Any, Any]], PolicyArch]:
    """Read a checkpoint safely: ``(layers, arch)`` with layers = [(weight, bias), ...]."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"path = {str(path)!r} is not an existing checkpoint file")
    if zipfile.is_zipfile(p) and p.suffix == ".zip":
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            if "policy.pth" not in names:
                raise InputError(
                    f"{p.name} is not a stable-baselines3 checkpoint: no policy.pth in {names}"
                )
            sd = _safe_load(z.read("policy.pth"), f"{p.name}/policy.pth")
            data = _sb3_data(z.read("data") if "data" in names else None)
        layers = _layers(sd, f"{p.name}/policy.pth")
        inferred = PolicyArch(
            obs_dim=int(layers[0][0].shape[1]),
            hidden_sizes=tuple(int(w.shape[0]) for w, _ in layers[:-1]),
            n_actions=int(layers[-1][0].shape[0]),
            activation=_sb3_activation(data),
            inputs=_sb3_inputs(data, layers, p.name),
        )
        if arch is not None:  # an explicit description may set inputs; shapes must agree
            given = PolicyArch.load(arch)
            _check_shapes(layers, given, p.name)
            return layers, given
        return layers, inferred
    sd = _safe_load(p, p.name)
    if arch is None:
        side = p.with_suffix(".json")
        if not side.is_file():
            raise ConfigError(
                f"arch is missing: a plain state dict needs its architecture "
                f"(arch=dict or JSON path), and there is no sidecar {side.name}"
            )
        arch = side
    given = PolicyArch.load(arch)
    layers = _layers(sd, p.name)
    _check_shapes(layers, given, p.name)
    return layers, given


def _check_shapes(layers: list[tuple[Any, Any]], arch: PolicyArch, what: str) -> None:
    dims = [arch.obs_dim, *arch.hidden_sizes, arch.n_actions]
    if len(layers) != len(dims) - 1:
        raise InputError(
            f"{what} has {len(layers)} linear layers: arch {arch.to_dict()} expects {len(dims) - 1}"
        )
    for k, (w, b) in enumerate(layers):
        want = (dims[k + 1], dims[k])
        if tuple(w.shape) != want or tuple(b.shape) != (dims[k + 1],):
            raise InputError(
                f"{what} layer {k} has weight {tuple(w.shape)} and bias "
                f"{tuple(b.shape)}: arch {arch.to_dict()} expects {want} and "
                f"({dims[k + 1]},)"
            )


def _device(device: str) -> Any:
    torch = _torch()
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError(
            f"device = {device!r} is not allowed: expected 'cpu', 'cuda' or 'cuda:<index>'"
        )
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device = {device!r} is not available: torch.cuda.is_available() "
                "is False; use device='cpu'"
            )
        idx = int(device.split(":")[1]) if ":" in device else 0
        if idx >= torch.cuda.device_count():
            raise ConfigError(
                f"device = {device!r} is not available: {torch.cuda.device_count()} CUDA device(s)"
            )
    return torch.device(device)


# ----------------------------------------------------------------------------- the agent
class TorchPolicyAgent(ObservationAgent):
    """A shared (parameter-shared) policy network acting for every bank it is given.

    Build it with ``TorchPolicyAgent.load(path, ...)`` (SB3 zip or plain state dict) or
    ``TorchPolicyAgent.from_state_dict(state_dict, arch, ...)``.

    Args:
        layers: [(weight, bias), ...] of the Linear layers, input to logits.
        arch: the architecture the layers follow.
        device: "cpu", "cuda" or "cuda:<index>"; "cuda" without a GPU is a ``ConfigError``.
        deterministic: argmax of the masked logits (True) or a sample from their softmax.
        seed: seed of the generator used for sampling.
    """

    def __init__(
        self,
        layers: list[tuple[Any, Any]],
        arch: PolicyArch,
        *,
        device: str = "cpu",
        deterministic: bool = True,
        seed: int | None = None,
    ) -> None:
        torch = _torch()
        _check_shapes(layers, arch, "weights")
        if not isinstance(deterministic, bool):
            raise ConfigError(
                f"deterministic = {deterministic!r} is not allowed: expected true or false"
            )
        self.arch = arch
        self.device = _device(device)
        self.deterministic = deterministic
        mods: list[Any] = []
        for k, (w, b) in enumerate(layers):
            lin = torch.nn.Linear(int(w.shape[1]), int(w.shape[0]))
            with torch.no_grad():
                lin.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
                lin.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
            mods.append(lin)
            if k < len(layers) - 1:
                mods.append(getattr(torch.nn, ACTIVATIONS[arch.activation])())
        self.net = torch.nn.Sequential(*mods).to(self.device).eval()
        self._rng = np.random.default_rng(seed)

    @classmethod
    def load(
        cls,
        path: str | Path,
        arch: PolicyArch | Mapping[str, Any] | str | Path | None = None,
        *,
        device: str = "cpu",
        deterministic: bool = True,
        seed: int | None = None,
    ) -> TorchPolicyAgent:
        """From an SB3 ``.zip`` or a plain state dict file (see the module docstring)."""
        layers, arch_ = load_weights(path, arch)
        return cls(layers, arch_, device=device, deterministic=deterministic, seed=seed)

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, Any],
        arch: PolicyArch | Mapping[str, Any] | str | Path,
        *,
        device: str = "cpu",
        deterministic: bool = True,
        seed: int | None = None,
    ) -> TorchPolicyAgent:
        """From an in-memory state dict (``nn.Sequential`` or SB3 keys) and its architecture."""
        arch_ = PolicyArch.load(arch)
        return cls(
            _layers(dict(state_dict), "state_dict"),
            arch_,
            device=device,
            deterministic=deterministic,
            seed=seed,
        )

    def save(self, path: str | Path) -> Path:
        """Write the weights (``nn.Sequential`` keys) and the sidecar ``<path>.json`` arch."""
        torch = _torch()
        p = Path(path)
        torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, p)
        p.with_suffix(".json").write_text(json.dumps(self.arch.to_dict(), indent=2))
        return p

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def logits(
        self, obs: np.ndarray, masks: np.ndarray, params: Params | None = None
    ) -> np.ndarray:
        """(..., A) float64 raw logits of observations (..., D) and masks (..., A) (the masks are
        inputs only when ``arch.inputs`` says so). ``params`` (the env's) only words errors."""
        torch = _torch()
        obs, masks = np.asarray(obs), np.asarray(masks)
        keys = self.input_keys(obs.shape[-1], masks.shape[-1], params)
        given = {"observation": obs, "action_mask": masks}
        x = np.concatenate([np.asarray(given[k], dtype=np.float32) for k in keys], axis=-1)
        flat = x.reshape(-1, x.shape[-1])
        with torch.no_grad():
            out = self.net(torch.as_tensor(flat, device=self.device)).double().cpu().numpy()
        return out.reshape(*x.shape[:-1], -1)

    def input_keys(
        self, obs_width: int, n_actions: int, params: Params | None = None
    ) -> tuple[str, ...]:
        """The entries fed to the network, in order, for an env whose observation is
        ``obs_width`` wide with ``n_actions`` actions; an ``InputError`` saying what differs
        when the checkpoint does not fit that env (``params``, the env's, adds its K)."""
        arch = self.arch
        if arch.n_actions == n_actions:
            if arch.inputs == "auto":
                for keys in (("observation",), ("action_mask", "observation")):
                    if arch.obs_dim == obs_width + n_actions * ("action_mask" in keys):
                        return keys
            elif arch.observation_width == obs_width:
                return arch.keys  # type: ignore[return-value]
        raise InputError(_mismatch(arch, obs_width, n_actions, params))

    def act_arrays(self, obs: np.ndarray, masks: np.ndarray, params: Params | None) -> np.ndarray:
        self.input_keys(obs.shape[-1], masks.shape[-1], params)
        if obs.size == 0:
            return np.zeros(obs.shape[:-1], dtype=np.int64)
        logits = self.logits(obs, masks, params)
        legal = masks > 0
        if not self.deterministic:
            logits = logits + self._rng.gumbel(size=logits.shape)  # Gumbel-max = softmax draw
        scored = np.where(legal, logits, -np.inf)
        return np.where(legal.any(axis=-1), scored.argmax(axis=-1), 0).astype(np.int64)


def _slots(obs_width: int, params: Params) -> int | None:
    """K of an observation ``obs_width`` wide with the markets of ``params`` (None if none)."""
    k, rest = divmod(obs_width - ObservationLayout(0, params.M).size, len(SLOT_FEATURES))
    return k if k >= 0 and rest == 0 else None


def _mismatch(arch: PolicyArch, obs_width: int, n_actions: int, params: Params | None) -> str:
    """Why a checkpoint does not fit an env: the widths it expects, the env's, what differs."""
    keys, d_ckpt = arch.keys, arch.observation_width
    differs = []
    if keys is None or d_ckpt is None:  # "auto": how the first layer splits is unknown
        expects, gives = f"{arch.obs_dim} inputs", f"a {obs_width}-wide observation"
        if arch.obs_dim not in (obs_width, n_actions + obs_width):
            differs.append(
                f"neither its observation ({obs_width}) nor its action mask and observation "
                f"({n_actions} + {obs_width} = {n_actions + obs_width}) is {arch.obs_dim} wide"
            )
    else:
        widths = {"observation": d_ckpt, "action_mask": arch.n_actions}
        env_widths = {"observation": obs_width, "action_mask": n_actions}
        expects = " + ".join(str(widths[k]) for k in keys)
        expects += f" = {arch.obs_dim} inputs" if len(keys) > 1 else " inputs"
        expects += f" ({', '.join(keys)})"
        gives = " + ".join(str(env_widths[k]) for k in keys)
        if obs_width != d_ckpt:
            env_k = ckpt_k = ""
            if params is not None:
                k = _slots(d_ckpt, params)
                env_k = f" (K={params.K} slots)"
                ckpt_k = f" (K={k})" if k is not None else f" (not K slots of {params.M} markets)"
            differs.append(
                f"its observation is {obs_width} wide{env_k} where the checkpoint's was "
                f"{d_ckpt}{ckpt_k}"
            )
    if n_actions != arch.n_actions:
        differs.append(f"it has {n_actions} actions where the checkpoint has {arch.n_actions}")
    return (
        f"the checkpoint expects {expects} but this env gives {gives}: {'; '.join(differs)}. "
        "Load a checkpoint trained on this env config (max_counterparties, markets and "
        "size_levels set the widths)"
    )
