"""Model configs checked at load: a malformed model.json is a ModelError naming file and field."""

import json
import os
import re
import time

import numpy as np
import pytest
import torch

from social_pose_diffusion.policy import (
    MAX_CONFIG_BYTES,
    ModelError,
    Policy,
    load_config,
    load_policy,
)
from social_pose_diffusion.policy.config import PolicyConfig

torch.set_num_threads(1)
NEUTRAL = [[0.5, 0.3 + 0.02 * j] for j in range(13)]
SPEED = [0.01] * 13


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """A tiny saved policy: its directory and the text of its model.json."""
    out = tmp_path_factory.mktemp('model')
    config = PolicyConfig(
        policy='bc',
        d_model=32,
        layers=1,
        heads=2,
        horizon=8,
        neutral_pose=NEUTRAL,
        max_speed=SPEED,
    )
    Policy(config).save(out / 'model.safetensors')
    return out, (out / 'model.json').read_text()


def _edit(**changes):
    """model.json text -> the config with some fields changed (NaN, inf as Python writes them)."""
    return lambda text: json.dumps({**json.loads(text), **changes})


def _whole(change):
    return lambda text: json.dumps(change(json.loads(text)))


NAN, INF = float('nan'), float('inf')
# (name, model.json text -> new contents, the field the error must name)
CASES = [
    ('max_speed NaN', _edit(max_speed=[NAN] * 13), 'max_speed'),
    ('max_speed inf', _edit(max_speed=[INF] * 13), 'max_speed'),
    ('max_speed zero', _edit(max_speed=[0.0] * 13), 'max_speed'),
    ('max_speed short', _edit(max_speed=[0.01] * 12), 'max_speed'),
    ('max_speed strings', _edit(max_speed=['fast'] * 13), 'max_speed'),
    ('neutral_pose strings', _edit(neutral_pose=[['a', 'b']] * 13), 'neutral_pose'),
    ('neutral_pose 3 columns', _edit(neutral_pose=[[0.5, 0.5, 1.0]] * 13), 'neutral_pose'),
    ('neutral_pose NaN', _edit(neutral_pose=[[NAN, 0.5]] * 13), 'neutral_pose'),
    ('neutral_pose missing', _edit(neutral_pose=[]), 'neutral_pose'),
    ('rest prior without its posture', _edit(prior='rest', prior_rest_s=30.0), 'rest_posture'),
    ('rest_posture short', _edit(rest_posture=[[0.0, 0.5]] * 12), 'rest_posture'),
    ('prior_rest_s negative', _edit(prior_rest_s=-1.0), 'prior_rest_s'),
    ('d_model string', _edit(d_model='64'), 'd_model'),
    ('d_model odd', _edit(d_model=33, heads=1), 'd_model'),
    ('horizon float', _edit(horizon=16.0), 'horizon'),
    ('horizon zero', _edit(horizon=0), 'horizon'),
    ('layers bool', _edit(layers=True), 'layers'),
    ('heads zero', _edit(heads=0), 'heads'),
    ('heads not dividing', _edit(heads=3), 'heads'),
    ('lags zero', _edit(lags=[0, 30]), 'lags'),
    ('lags not a list', _edit(lags=6), 'lags'),
    ('lags strings', _edit(lags=['6']), 'lags'),
    ('fps infinite', _edit(fps=INF), 'fps'),
    ('fps negative', _edit(fps=-30.0), 'fps'),
    ('beta order', _edit(beta_start=0.5, beta_end=0.1), 'beta_start'),
    ('steps negative', _edit(steps=-5), 'steps'),
    ('timesteps huge', _edit(timesteps=10**9), 'timesteps'),
    ('unknown encoder', _edit(encoder='lidar'), 'encoder'),
    ('unknown family', _edit(policy='gan'), 'policy'),
    ('sampler of another family', _edit(sampler='euler'), 'sampler'),
    ('unknown key', _edit(dropout=0.1), 'dropout'),
    ('other format', _edit(format='x/2'), 'format'),
    ('a list', _whole(lambda cfg: [cfg]), 'JSON object'),
    ('a number', _whole(lambda cfg: 3), 'JSON object'),
    ('truncated', lambda text: text[: len(text) // 2], 'valid'),
    ('not utf-8', lambda text: b'\xff\xfe' + text.encode(), 'valid'),
    ('deep nesting', lambda text: '[' * 100_000, 'valid'),
]


@pytest.mark.parametrize('name,edit,field', CASES, ids=[c[0] for c in CASES])
def test_malformed_config_is_refused_naming_file_and_field(model, tmp_path, name, edit, field):
    src, text = model
    (tmp_path / 'model.safetensors').write_bytes((src / 'model.safetensors').read_bytes())
    new = edit(text)
    (tmp_path / 'model.json').write_bytes(new if isinstance(new, bytes) else new.encode())
    with pytest.raises(ModelError) as err:
        load_policy(tmp_path, 'cpu')
    message = str(err.value)
    assert str(tmp_path / 'model.json') in message and field in message
    assert '\n' not in message


def test_nan_config_never_loads_a_policy_that_publishes_nan(model, tmp_path):
    """The measured failure: ``max_speed: NaN`` loaded silently and every pose was NaN."""
    src, text = model
    (tmp_path / 'model.safetensors').write_bytes((src / 'model.safetensors').read_bytes())
    (tmp_path / 'model.json').write_text(_edit(max_speed=[0.01] * 12 + [NAN])(text))
    with pytest.raises(ModelError, match='max_speed must be finite'):
        load_policy(tmp_path, 'cpu')


def test_oversized_config_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / 'model.json'
    with open(path, 'wb') as f:
        f.truncate(2 << 30)  # a 2 GB sparse file
    reads = []
    real_open = type(path).open
    monkeypatch.setattr(
        type(path), 'open', lambda self, *a, **k: reads.append(self) or real_open(self, *a, **k)
    )
    start = time.monotonic()
    with pytest.raises(ModelError, match=f'{re.escape(str(path))}: {2 << 30} bytes'):
        load_config(path)
    assert reads == [] and time.monotonic() - start < 60  # refused from its size alone
    path.write_bytes(b' ' * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ModelError, match='bytes'):
        load_config(path)


def test_special_files_are_refused(tmp_path):
    fifo = tmp_path / 'fifo.json'
    os.mkfifo(fifo)
    with pytest.raises(ModelError, match='not a regular file'):
        load_config(fifo)  # would block forever if it were opened
    loop = tmp_path / 'loop.json'
    loop.symlink_to(loop)
    with pytest.raises(ModelError, match=re.escape(str(loop))):
        load_config(loop)


def test_the_shipped_default_model_passes_the_schema():
    policy = load_policy('models/default', 'cpu')
    assert policy.config.encoder == 'vector' and policy.config.policy == 'flow'
    assert np.isfinite(policy.config.max_speed).all()


def test_a_config_built_in_code_is_checked_too():
    with pytest.raises(ValueError, match='heads 3 must divide d_model 32'):
        PolicyConfig(d_model=32, heads=3)
    with pytest.raises(ValueError, match='horizon must be an integer'):
        PolicyConfig(horizon=8.5)
