"""The encoder, family and sampler registries: every entry works, no name is compared elsewhere."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import NUM_JOINTS
from social_pose_diffusion.learning import dataset
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.observation.encoders import ENCODERS
from social_pose_diffusion.planning.agent import FacilitatorAgent
from social_pose_diffusion.policy import FAMILIES, SAMPLERS, Policy
from social_pose_diffusion.sources.sim import simulate

torch.set_num_threads(1)
PACKAGE = Path(__file__).resolve().parents[1] / 'social_pose_diffusion'
REGISTRIES = {
    PACKAGE / 'observation' / 'encoders.py',
    PACKAGE / 'policy' / 'families.py',
    PACKAGE / 'policy' / 'samplers.py',
    PACKAGE / 'policy' / 'config.py',
}
# A registered name compared as a string: `encoder == 'raw'`, `c.policy in ('bc', 'dbc')`, ...
COMPARISON = re.compile(
    r"""(encoder|policy|sampler)['"\]]*\)?\s*"""
    r"""(==|!=|(not\s+)?in\s*[(\[{])\s*['"]"""
)


@pytest.fixture(scope='module')
def session():
    return simulate('teacher', 3, 12.0, 30.0, seed=3)


def test_every_family_samples_with_each_of_its_samplers(session):
    frame = np.full((64, 128, 3), 90, np.uint8)
    for encoder in ENCODERS:
        for family in FAMILIES.values():
            config = make_config(
                [session],
                encoder=encoder,
                policy=family.name,
                d_model=16,
                layers=1,
                heads=2,
                horizon=4,
                timesteps=5,
                extra_steps=2,
            )
            policy = Policy(config).eval()
            obs, _ = dataset.build(
                [session], config, 'eval', stride=50, raw_frames=[lambda t: frame]
            ).batch(np.arange(2))
            for sampler in family.samplers:
                policy.evaluations = 0
                chunks = policy.sample(obs, 3, sampler, 2, torch.Generator().manual_seed(0))
                assert chunks.shape == (2, 3, 4, NUM_JOINTS, 2) and np.isfinite(chunks).all()
                assert policy.evaluations == policy.sampler_evaluations(sampler, 2), sampler
            agent = FacilitatorAgent(policy, samples=2)
            agent.reset(session.facilitator[0])
            plan = agent.plan(
                GroupFrame(10**9, session.participant_ids, session.participants[9]),
                image=frame if config.encoder_spec.needs_camera else None,
            )
            assert np.isfinite(plan.poses).all()


def test_every_sampler_serves_a_family_and_wrong_ones_are_refused(session):
    assert {name for f in FAMILIES.values() for name in f.samplers} == set(SAMPLERS)
    flow = Policy(make_config([session], policy='flow', d_model=16, layers=1, heads=2, horizon=4))
    obs, _ = dataset.build([session], flow.config, 'eval', stride=50).batch(np.arange(1))
    with pytest.raises(ValueError, match="a flow policy samples with euler, not 'ddim'"):
        flow.sample(obs, 1, 'ddim')
    for steps in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match='sampler steps must be a positive integer'):
            flow.sample(obs, 1, 'euler', steps)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match=r'k \(chunks per observation\) must be a positive'):
            flow.sample(obs, k)


def test_only_camera_encoders_need_the_camera():
    assert [name for name, e in ENCODERS.items() if e.needs_camera] == ['raw']
    with pytest.raises(ValueError, match='observes camera frames'):
        ENCODERS['raw'].image(np.zeros((0, NUM_JOINTS, 3)), np.zeros((NUM_JOINTS, 2)))


def test_registered_names_are_not_compared_outside_the_registries():
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        if path in REGISTRIES:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if COMPARISON.search(line):
                found.append(f'{path.relative_to(PACKAGE)}:{n}: {line.strip()}')
    assert not found, '\n'.join(found)
