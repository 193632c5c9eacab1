"""Checkpoints as one atomic set: interrupted writes, corrupt or mismatched files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from social_pose_diffusion.core import atomic
from social_pose_diffusion.learning import checkpoint
from social_pose_diffusion.learning.checkpoint import CheckpointError
from social_pose_diffusion.learning.train import make_config, train
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)
SMALL = {'d_model': 16, 'layers': 1, 'heads': 2, 'horizon': 4}
RUN = {'batch': 8, 'progress': False, 'save_every': 2}


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 3, 8.0, 30.0, seed=5)


@pytest.fixture(scope='module')
def config(session):
    return make_config([session], policy='flow', **SMALL)


@pytest.fixture
def run(tmp_path, session, config):
    """A run directory checkpointed at step 4."""
    train(config, [session], tmp_path / 'run', train_steps=4, **RUN)
    return tmp_path / 'run'


def _pointer(out):
    return json.loads((out / checkpoint.POINTER).read_text())


def _rehash(out):
    """Re-sign the pointer after a deliberate edit, so the checks behind the hashes are reached."""
    meta = _pointer(out)
    meta['files'] = {n: checkpoint._sha256(out / meta['dir'] / n) for n in checkpoint.FILES}
    (out / checkpoint.POINTER).write_text(json.dumps(meta))


def _hidden(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob('.*'))


def test_a_run_is_one_set_and_resume_continues_it(run, session, config):
    meta = _pointer(run)
    assert meta['step'] == 4
    assert [p.name for p in (run / 'checkpoints').iterdir()] == [Path(meta['dir']).name]
    assert sorted(p.name for p in (run / meta['dir']).iterdir()) == sorted(checkpoint.FILES)
    _, log = train(config, [session], run, train_steps=6, resume=True, **RUN)
    assert len(log) == 6 and _pointer(run)['step'] == 6 and _hidden(run) == []


@pytest.mark.parametrize('fail', ['state.safetensors', 'state.json', checkpoint.POINTER])
def test_a_failure_between_writes_leaves_the_previous_set(run, session, config, monkeypatch, fail):
    """kill -9 between the model and the state writes, simulated by a writer that fails there."""
    before = _pointer(run)
    real = atomic.write_bytes

    def failing(path, data):
        if Path(path).name == fail:  # the resumed run's first save, step 6
            raise OSError(28, 'No space left on device', str(path))
        return real(path, data)

    monkeypatch.setattr(checkpoint, 'write_bytes', failing)
    monkeypatch.setattr(
        checkpoint,
        'write_json',
        lambda path, payload: failing(path, (json.dumps(payload) + '\n').encode()),
    )
    with pytest.raises(OSError, match='No space'):
        train(config, [session], run, train_steps=6, resume=True, **RUN)
    monkeypatch.undo()
    assert _pointer(run) == before and _hidden(run) == []
    assert [p.name for p in (run / 'checkpoints').iterdir()] == [Path(before['dir']).name]
    policy, step, log = checkpoint.load(run, config, _optimizer(config), None, 'cpu')
    assert step == 4 and len(log) == 4


def _optimizer(config):
    from social_pose_diffusion.policy import Policy

    return torch.optim.AdamW(Policy(config).parameters())


def test_an_interrupted_model_write_leaves_no_temp_file(tmp_path, monkeypatch, config):
    from social_pose_diffusion.policy import Policy

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, 'replace', interrupted)
    with pytest.raises(KeyboardInterrupt):
        Policy(config).save(tmp_path / 'model.safetensors')
    assert list(tmp_path.iterdir()) == []


def _truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _drop_key(path):
    state = json.loads(path.read_text())
    del state['param_groups']
    path.write_text(json.dumps(state))


# (file of the current set, how it is damaged, re-sign the pointer?, what the error must say)
DAMAGE = [
    ('state.safetensors', _truncate, False, 'does not match its hash'),
    ('state.safetensors', _truncate, True, 'state.safetensors: does not fit this run'),
    ('model.safetensors', _truncate, True, 'not a readable safetensors file'),
    ('state.json', _truncate, False, 'does not match its hash'),
    ('state.json', _truncate, True, 'state.json: not valid JSON'),
    ('state.json', _drop_key, True, 'state.json: missing param_groups'),
    ('state.json', lambda p: p.unlink(), False, 'state.json: missing'),
]


@pytest.mark.parametrize(
    'name,damage,resign,message',
    DAMAGE,
    ids=[f'{d[0]}-{d[1].__name__}-{"signed" if d[2] else "raw"}' for d in DAMAGE],
)
def test_a_damaged_set_is_refused_naming_the_file(
    run, session, config, name, damage, resign, message
):
    path = run / _pointer(run)['dir'] / name
    damage(path)
    if resign and path.exists():
        _rehash(run)
    with pytest.raises(CheckpointError, match=message) as err:
        train(config, [session], run, train_steps=6, resume=True, **RUN)
    assert str(path) in str(err.value) and '\n' not in str(err.value)


@pytest.mark.parametrize(
    'text,message',
    [
        ('{"format": "social_pose_dif', 'not valid JSON'),
        ('[]', 'not a checkpoint pointer'),
        (
            '{"format": "social_pose_diffusion.checkpoint/1", "step": 4}',
            'needs step, dir and the hashes',
        ),
    ],
)
def test_a_damaged_pointer_is_refused_naming_it(run, session, config, text, message):
    (run / checkpoint.POINTER).write_text(text)
    with pytest.raises(CheckpointError, match=message) as err:
        train(config, [session], run, train_steps=6, resume=True, **RUN)
    assert str(run / checkpoint.POINTER) in str(err.value)


def test_a_pointer_outside_the_run_is_refused(run, session, config):
    meta = _pointer(run)
    meta['dir'] = '../elsewhere'
    (run / checkpoint.POINTER).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match='dir must name a directory under'):
        train(config, [session], run, train_steps=6, resume=True, **RUN)


@pytest.mark.parametrize(
    'options,differs',
    [
        ({'policy': 'diffusion'}, "policy 'flow' -> 'diffusion'"),
        ({'horizon': 6}, 'horizon 4 -> 6'),
        ({'encoder': 'plotted'}, "encoder 'vector' -> 'plotted'"),
    ],
)
def test_resume_with_other_options_names_what_differs(run, session, options, differs):
    other = make_config([session], **{**SMALL, 'policy': 'flow', **options})
    with pytest.raises(CheckpointError, match=differs) as err:
        train(other, [session], run, train_steps=6, resume=True, **RUN)
    assert 'model.json' in str(err.value)


def test_resume_past_the_end_is_refused(run, session, config):
    with pytest.raises(CheckpointError, match='already at step 4'):
        train(config, [session], run, train_steps=4, resume=True, **RUN)


@pytest.mark.slow  # a real process killed mid-run
def test_a_run_killed_mid_training_resumes_from_a_consistent_set(tmp_path, session, config):
    """A real kill -9 of a training process at some moment of its checkpoint writes."""
    out = tmp_path / 'run'
    code = (
        'import torch, sys; torch.set_num_threads(1)\n'
        'from social_pose_diffusion.learning.train import make_config, train\n'
        'from social_pose_diffusion.sources.sim import simulate\n'
        's = simulate("teacher", 3, 8.0, 30.0, seed=5)\n'
        f'c = make_config([s], policy="flow", **{SMALL!r})\n'
        'train(c, [s], sys.argv[1], train_steps=100000, batch=8, progress=False,\n'
        '      save_every=1)\n'
    )
    proc = subprocess.Popen([sys.executable, '-c', code, str(out)], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 300
        while (
            (not (out / checkpoint.POINTER).exists() or _pointer(out)['step'] < 3)
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert proc.poll() is None, 'training ended early'
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    step = _pointer(out)['step']
    _, log = train(config, [session], out, train_steps=step + 2, resume=True, **RUN)
    assert len(log) == step + 2 and _pointer(out)['step'] == step + 2
    assert len(list((out / 'checkpoints').iterdir())) == 1 and _hidden(out) == []


def test_a_run_ships_its_moving_average_and_resume_continues_it(tmp_path, session, config):
    """model.safetensors is the EMA, the set keeps the last weights for resuming and the EMA."""
    from safetensors.torch import load_file

    from social_pose_diffusion.policy import load_policy

    out = tmp_path / 'run'
    returned, _ = train(config, [session], out, train_steps=4, **RUN)
    ema4 = load_policy(out, 'cpu').state_dict()
    saved = load_file(str(out / _pointer(out)['dir'] / 'state.safetensors'))
    for key, value in returned.state_dict().items():
        torch.testing.assert_close(ema4[key], value)
        if key in dict(returned.named_parameters()):
            torch.testing.assert_close(saved[f'ema.{key}'], value)
    last4 = load_policy(out / _pointer(out)['dir'], 'cpu').state_dict()
    assert any(not torch.equal(last4[k], v) for k, v in ema4.items())
    train(config, [session], out, train_steps=5, resume=True, **RUN)
    last5 = load_policy(out / _pointer(out)['dir'], 'cpu').state_dict()
    ema5 = load_policy(out, 'cpu').state_dict()
    keep = 5 / 14  # the warm-up decay (1 + step) / (10 + step) at step 4
    for name, _ in returned.named_parameters():
        torch.testing.assert_close(ema5[name], keep * ema4[name] + (1 - keep) * last5[name])
