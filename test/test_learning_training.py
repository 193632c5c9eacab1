"""Real (tiny) training runs on a short simulated session, the train/evaluate CLIs and resume."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from social_pose_diffusion.cli.main import main
from social_pose_diffusion.evaluation.offline import evaluate, write_report
from social_pose_diffusion.learning.train import make_config, train
from social_pose_diffusion.policy import load_policy
from social_pose_diffusion.sources.sim import Renderer, simulate

pytestmark = [pytest.mark.slow]  # real training runs

torch.set_num_threads(1)
SMALL = {'d_model': 32, 'layers': 1, 'heads': 2, 'horizon': 8}


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 3, 20.0, 30.0, seed=5)


@pytest.mark.parametrize('kind', ['diffusion', 'flow', 'bc', 'dbc'])
def test_loss_falls(session, kind):
    config = make_config([session], policy=kind, **SMALL)
    _, log = train(
        config, [session], train_steps=60, batch=32, lr=3e-3, progress=False, critic_steps=30
    )
    assert np.mean(log[-10:]) < np.mean(log[:10])


def test_nobody_in_view_trains_finite_weights(session):
    # A recording in which perception found nobody: nothing to scale the people's tokens by.
    alone = replace(
        session,
        participant_ids=session.participant_ids[:0],
        participants=session.participants[:, :0],
    )
    policy, log = train(
        make_config([alone], **SMALL), [alone], train_steps=5, batch=8, progress=False
    )
    assert np.isfinite(log).all()
    assert all(torch.isfinite(t).all() for t in policy.state_dict().values())


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # the broken joint's own arithmetic
def test_a_non_finite_loss_stops_training_before_anything_is_saved(session, tmp_path):
    broken = session.participants.copy()
    broken[40:, 0, 0, 0] = np.inf  # one present joint: its token scale, so the first loss, is inf
    bad = replace(session, participants=broken)
    with pytest.raises(ValueError, match='training diverged: the loss is nan at step 1 '):
        train(
            make_config([session], **SMALL),
            [bad],
            train_steps=5,
            batch=8,
            progress=False,
            out=tmp_path,
        )
    assert not list(tmp_path.iterdir())


def test_image_encoders_train(session):
    render = Renderer(session, width=256, height=128)
    for encoder in ('plotted', 'raw'):
        config = make_config([session], encoder=encoder, policy='diffusion', **SMALL)
        policy, log = train(
            config,
            [session],
            train_steps=8,
            batch=8,
            progress=False,
            image_stride=8,
            raw_frames=[render.frame],
        )
        assert np.isfinite(log).all() and policy.config.encoder == encoder


def test_train_cli_resume_and_evaluate(tmp_path):
    out = tmp_path / 'run'
    args = [
        'train',
        '--simulate',
        'musician',
        '--seconds',
        '20',
        '--policy',
        'flow',
        '--out',
        str(out),
        '--batch',
        '16',
        '--threads',
        '1',
        '--d-model',
        '32',
        '--layers',
        '1',
        '--heads',
        '2',
    ]
    assert main(args + ['--train-steps', '12']) == 0
    assert json.loads((out / 'checkpoint.json').read_text())['step'] == 12
    first = (out / 'model.safetensors').read_bytes()
    assert main(args + ['--train-steps', '20', '--resume']) == 0
    pointer = json.loads((out / 'checkpoint.json').read_text())
    state = json.loads((out / pointer['dir'] / 'state.json').read_text())
    assert pointer['step'] == state['step'] == 20 and len(state['log']) == 20
    assert [p.name for p in (out / 'checkpoints').iterdir()] == [pointer['dir'].split('/')[-1]]
    assert (out / 'model.safetensors').read_bytes() != first
    policy = load_policy(out, 'cpu')
    assert (policy.config.d_model, policy.config.layers, policy.config.heads) == (32, 1, 2)
    long = simulate('musician', 3, 60.0, 30.0, seed=9)
    report = evaluate(
        policy, [long], k=3, starts=1, replan=4, invitation_samples=4, progress=False
    )
    entry = report['sessions'][0]
    assert entry['frames'] > 0 and entry['mpjpe_one_step'] > 0 and entry['diversity'] > 0
    assert set(entry['rollout']['mpjpe']) == {'1s', '5s', '10s'}
    assert entry['rollout']['bone_length_error'] < 1e-4  # float32 keypoints vs float64 integration
    paths = write_report(report, tmp_path / 'eval' / 'report.json')
    assert all(
        (tmp_path / 'eval' / name).is_file()
        for name in ('report.json', 'report.md', 'report_horizon.png')
    )
    assert len(paths) >= 3 and '| session |' in (tmp_path / 'eval' / 'report.md').read_text()
