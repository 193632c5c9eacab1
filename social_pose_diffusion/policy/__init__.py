"""Policies: configuration, registries of families and samplers, networks, model files.

A model is two files with one stem: ``<stem>.safetensors`` (weights and
normalisation, config copy in the metadata) and ``<stem>.json`` (the
:class:`PolicyConfig`). :func:`load_policy` accepts the ``.safetensors`` or
``.json`` path, the stem itself (``models/default``) or a directory holding
``model.safetensors`` + ``model.json`` (what ``social-pose train --out DIR`` writes).
"""

import json
from pathlib import Path

from social_pose_diffusion.policy.config import ENCODERS, FAMILIES, SAMPLERS, PolicyConfig
from social_pose_diffusion.policy.modeling import ModelError, Policy, resolve_device

__all__ = [
    'ENCODERS',
    'FAMILIES',
    'MAX_CONFIG_BYTES',
    'SAMPLERS',
    'ModelError',
    'Policy',
    'PolicyConfig',
    'load_config',
    'load_policy',
    'model_paths',
    'resolve_device',
]

MAX_CONFIG_BYTES = 1 << 20  # a model.json is a few kB; anything above 1 MB is not one


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, config) paths for a model path in any accepted form."""
    path = Path(path)
    if path.is_dir():
        path = path / 'model'
    elif path.suffix in ('.safetensors', '.json'):
        path = path.with_suffix('')
    return path.with_name(path.name + '.safetensors'), path.with_name(path.name + '.json')


def load_config(path: str | Path) -> PolicyConfig:
    """The :class:`PolicyConfig` of a model.json; a :class:`ModelError` names the file and field.

    The size is checked before reading, so a huge or endless file is refused at once.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ModelError(f'{path}: not a regular file')
        if size > MAX_CONFIG_BYTES:
            raise ModelError(
                f'{path}: {size} bytes, more than a model config may hold '
                f'({MAX_CONFIG_BYTES} bytes)'
            )
        with path.open('rb') as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise ModelError(f'{path}: more than {MAX_CONFIG_BYTES} bytes')
        return PolicyConfig.from_dict(json.loads(text))
    except OSError as exc:
        raise ModelError(f'{path}: cannot read: {exc.strerror or exc}') from exc
    except ModelError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:  # JSON syntax, encoding or schema
        raise ModelError(f'{path}: not a valid policy config: {exc}') from exc


def load_policy(path: str | Path | None, device: str = 'auto') -> Policy:
    """A :class:`Policy` in eval mode on ``device`` (auto|cpu|cuda); raises :class:`ModelError`.

    ``path`` None or '' is the packaged default model, as the nodes load it.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path:
        from social_pose_diffusion.core.resources import default_model

        path = default_model()
    weights, config_path = model_paths(path)
    for p in (weights, config_path):
        if not p.is_file():
            raise ModelError(
                f'model file {p} not found (expected <stem>.safetensors + '
                '<stem>.json, or a directory with model.safetensors + model.json)'
            )
    config = load_config(config_path)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f'{weights}: not a readable safetensors file: {exc}') from exc
    policy = Policy(config)
    expected = policy.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or extra or wrong:
        raise ModelError(
            f'{weights} does not match {config_path.name}: missing {missing[:5]}, '
            f'unexpected {extra[:5]}, wrong shape {wrong[:5]}'
        )
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelError(f'{weights} holds non-finite values in {bad[:5]}')
    policy.load_state_dict(state)
    return policy.to(resolve_device(device)).eval()
