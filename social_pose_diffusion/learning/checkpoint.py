"""Training checkpoints written and read as one atomic set.

A run directory ``DIR`` holds:

- ``DIR/checkpoints/step-<N>.<tag>/``: the policy (``model.safetensors`` +
  ``model.json``) and the training state (``state.safetensors``: optimiser
  moments and the DBC critic; ``state.json``: step, optimiser groups, loss log)
  of step N;
- ``DIR/checkpoint.json``: the pointer to the current step directory with
  the SHA-256 of each of its files, replaced atomically after they are written;
- ``DIR/model.safetensors`` + ``DIR/model.json``: a copy of the newest policy
  for :func:`social_pose_diffusion.policy.load_policy`.

A resume reads only what the pointer names and checks every hash, so it
never mixes files of different steps: a run killed while writing leaves the
previous pointer (and an unreferenced directory, removed by the next save).
Every problem is a :class:`CheckpointError` naming the file and what is wrong.
"""

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from social_pose_diffusion.core.atomic import write_bytes, write_json
from social_pose_diffusion.policy import MAX_CONFIG_BYTES, ModelError, load_policy

FORMAT = 'social_pose_diffusion.checkpoint/1'
POINTER = 'checkpoint.json'
FILES = ('model.safetensors', 'model.json', 'state.safetensors', 'state.json')


class CheckpointError(ValueError):
    """A checkpoint that is missing files, corrupt, partial or from another configuration."""


def exists(out) -> bool:
    """Whether ``out`` holds a checkpoint pointer."""
    return (Path(out) / POINTER).is_file()


def saved_step(out) -> int | None:
    """The step of the checkpoint in ``out``; None without one."""
    return _pointer(Path(out))[1]['step'] if exists(out) else None


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def save(out, step: int, policy, optimizer, critic, log, ema=None) -> Path:
    """Write step ``step`` as a new set, switch the pointer to it, drop older sets.

    With ``ema`` (the policy's exponential moving average) the set holds it too and
    the run's ``model.safetensors`` is the average: what the run ships.
    """
    from safetensors.torch import save as to_bytes

    out = Path(out)
    root = out / 'checkpoints'
    root.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(dir=root, prefix=f'step-{step:07d}.'))
    try:
        policy.save(target / 'model.safetensors')
        state = optimizer.state_dict()
        tensors = {
            f'opt.{i}.{k}': v.detach().cpu().reshape(-1) if v.dim() == 0 else v.detach().cpu()
            for i, s in state['state'].items()
            for k, v in s.items()
        }
        for prefix, module in (('critic', critic), ('ema', ema)):
            if module is not None:
                tensors.update(
                    {f'{prefix}.{k}': v.detach().cpu() for k, v in module.state_dict().items()}
                )
        write_bytes(
            target / 'state.safetensors', to_bytes({k: v.contiguous() for k, v in tensors.items()})
        )
        write_json(
            target / 'state.json',
            {'step': step, 'param_groups': state['param_groups'], 'log': log},
        )
        target.chmod(0o755)
        write_json(
            out / POINTER,
            {
                'format': FORMAT,
                'step': step,
                'dir': str(target.relative_to(out)),
                'files': {name: _sha256(target / name) for name in FILES},
            },
        )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    for old in root.iterdir():
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    for stale in [*out.glob('.model.*'), *out.glob(f'.{POINTER}.*')]:  # a killed run's temp files
        stale.unlink(missing_ok=True)
    (policy if ema is None else ema).save(out / 'model.safetensors')
    return target


def _pointer(out):
    path = out / POINTER
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise CheckpointError(f'{path}: larger than {MAX_CONFIG_BYTES} bytes, not a pointer')
        meta = json.loads(path.read_bytes())
    except OSError as exc:
        raise CheckpointError(f'{path}: cannot read: {exc.strerror or exc}') from exc
    except ValueError as exc:
        raise CheckpointError(f'{path}: not valid JSON ({exc}); truncated?') from exc
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise CheckpointError(f'{path}: not a checkpoint pointer (format {FORMAT!r} expected)')
    files, where, step = meta.get('files'), meta.get('dir'), meta.get('step')
    if not isinstance(files, dict) or sorted(files) != sorted(FILES) or not isinstance(step, int):
        raise CheckpointError(f'{path}: needs step, dir and the hashes of {", ".join(FILES)}')
    if (
        not isinstance(where, str)
        or Path(where).parent != Path('checkpoints')
        or Path(where).name in ('', '.', '..')
    ):
        raise CheckpointError(f'{path}: dir must name a directory under {out / "checkpoints"}')
    return path, meta


def _differences(saved, wanted):
    """``field saved -> wanted`` for every field where two configs differ."""
    a, b = saved.to_dict(), wanted.to_dict()
    return [
        f'{k} {a[k]!r} -> {b[k]!r}' if len(repr(a[k])) < 40 else f'{k} differs'
        for k in a
        if a[k] != b[k]
    ]


def load(out, config, optimizer, critic, device, ema=None):
    """(policy, step, loss log) of the checkpoint in ``out``, checked against ``config``.

    ``optimizer`` (of the run's fresh policy), ``critic`` and ``ema`` receive the saved state
    (a set saved without an average starts ``ema`` from the saved policy).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    out = Path(out)
    pointer, meta = _pointer(out)
    folder = out / meta['dir']
    for name, digest in meta['files'].items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f'{path}: missing (named by {pointer})')
        if _sha256(path) != digest:
            raise CheckpointError(
                f'{path}: does not match its hash in {pointer} '
                '(truncated or changed after it was written)'
            )
    try:
        policy = load_policy(folder, device)
    except ModelError as exc:
        raise CheckpointError(str(exc)) from exc
    differ = _differences(policy.config, config)
    if differ:
        raise CheckpointError(
            f'{folder / "model.json"}: the checkpoint was trained with other '
            f'options ({"; ".join(differ)}); resume with the same options '
            'or train into another --out'
        )
    state_json = folder / 'state.json'
    try:
        state = json.loads(state_json.read_bytes())
    except ValueError as exc:
        raise CheckpointError(f'{state_json}: not valid JSON ({exc})') from exc
    missing = [
        k for k in ('step', 'param_groups', 'log') if not isinstance(state, dict) or k not in state
    ]
    if missing:
        raise CheckpointError(f'{state_json}: missing {", ".join(missing)}')
    if (
        state['step'] != meta['step']
        or not isinstance(state['log'], list)
        or len(state['log']) != state['step']
    ):
        raise CheckpointError(
            f'{state_json}: step {state["step"]} and a log of '
            f'{len(state["log"])} losses do not match step {meta["step"]} '
            f'of {pointer}'
        )
    state_file = folder / 'state.safetensors'
    try:
        tensors = load_file(str(state_file))
        moments = {}
        for key, v in tensors.items():
            if key.startswith('opt.'):
                _, i, name = key.split('.', 2)
                moments.setdefault(int(i), {})[name] = v.reshape(()) if name == 'step' else v
        optimizer.load_state_dict({'state': moments, 'param_groups': state['param_groups']})
        for prefix, module in (('critic', critic), ('ema', ema)):
            if module is None:
                continue
            saved = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix)}
            module.load_state_dict(saved if saved or prefix == 'critic' else policy.state_dict())
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f'{state_file}: does not fit this run: {exc}') from exc
    return policy, state['step'], [float(x) for x in state['log']]
