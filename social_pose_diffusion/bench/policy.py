"""Policy step time per frame: the fast configuration vs the paper's (image encoder + Diffusion-X).

The paper's sampler is Diffusion-X T=50+M=8.

Each configuration plans on the same simulated group frames, one frame at a
time, through :class:`FacilitatorAgent` (observation, sampling, integration):

- ``fast``: the shipped model (vector encoder + few-step sampler), 1 sample;
- ``node_default``: the same model as the policy node runs it by default
  (4 samples per observation, medoid executed);
- ``paper_plotted`` / ``paper_raw``: our plotted / raw image encoder with the
  Diffusion-X sampler (58 evaluations), image encoded once per frame;
- ``paper_as_published``: the paper's denoiser size (128-d, 4 blocks, 16 heads)
  re-running the image encoder at every one of the 58 steps, as Pearce et
  al.'s code does (observation and sampling, eager modules).

The configurations take turns frame by frame (each on its own consecutive
frames), so the load of a shared machine falls on all of them alike.
``speedup[row][paper]`` is how many times longer a paper configuration's
step takes than that row's, mean over mean and p95 over p95, in one run.
Timing does not depend on the weights, so the paper configurations use
freshly initialised networks.
"""

import argparse
import time

from social_pose_diffusion.cli.arguments import device, integer

ROWS = ('fast', 'node_default')
DESCRIPTIONS = {
    'fast': 'shipped model: vector set encoder + flow, Euler steps, 1 sample per frame '
    '(Policy.sample, traced networks)',
    'node_default': 'the shipped model as the policy node runs it by default: '
    '4 samples per frame, their medoid executed',
    'paper_plotted': 'plotted-image encoder + Diffusion-X T=50+M=8 (58 evaluations), '
    '64-d 2-block denoiser, image encoded once per frame (same Policy.sample path as fast)',
    'paper_raw': 'raw camera frames (resized inside the step) + Diffusion-X T=50+M=8, '
    'image encoded once per frame (same Policy.sample path as fast)',
    'paper_as_published': "the paper's configuration as published: 128-d 4-block 16-head "
    'denoiser, plotted-image encoder re-run at each of the 58 Diffusion-X steps, eager PyTorch '
    'modules; timed observation + sampling (no integration of the plan)',
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--model', default=None, help='fast model (default: the packaged default model)'
    )
    parser.add_argument(
        '--frames',
        type=integer(1, 100_000),
        default=150,
        help='timed frames per configuration (default: %(default)s)',
    )
    parser.add_argument(
        '--paper-frames',
        type=integer(1, 10_000),
        default=20,
        help='timed frames of the paper configurations',
    )
    parser.add_argument(
        '--threads',
        type=integer(1, 1024),
        default=1,
        help='torch CPU threads (default: %(default)s)',
    )
    parser.add_argument(
        '--device', type=device, default='cpu', help='auto, cpu or cuda (default: %(default)s)'
    )


class _AgentStep:
    """Times ``agent.plan`` of frame ``t`` and counts network evaluations.

    Then commits the plan's first pose.
    """

    def __init__(self, agent, session, raw_frame=None):
        self.agent, self.session, self.raw_frame = agent, session, raw_frame
        self.evaluations = self.frames = 0

    def __call__(self, t):
        from social_pose_diffusion.evaluation.offline import group_frame

        image = self.raw_frame(t) if self.raw_frame else None
        evaluations = self.agent.policy.evaluations
        start = time.perf_counter()
        plan = self.agent.plan(group_frame(self.session, t), image=image)
        elapsed = time.perf_counter() - start
        self.evaluations += self.agent.policy.evaluations - evaluations
        self.frames += 1
        self.agent.commit(plan.stamps_ns[0], plan.poses[0])
        return elapsed


def _published_step(policy, agent, session):
    """Times Diffusion-X on frame ``t``, the observation encoder inside every denoising step.

    As in the published code.
    """
    import torch

    from social_pose_diffusion.evaluation.offline import group_frame
    from social_pose_diffusion.policy import samplers

    c = policy.config

    def step(t):
        start = time.perf_counter()
        with torch.inference_mode():
            obs = policy.tensors(agent.observation(group_frame(session, t)))
            x = torch.randn((1, c.horizon, c.action_dim))
            samplers.diffusion_x(
                lambda y, s: policy.net(policy.encoder(obs), y, s.float() / c.timesteps),
                x,
                policy.schedule,
                c.extra_steps,
            )
        return time.perf_counter() - start

    return step


def _interleaved(steps, frames, warmup=3):
    """Seconds of ``steps[name](t)`` for ``frames[name]`` frames each, taking turns.

    The timed frames follow ``warmup`` untimed ones of each.

    Every configuration's timed frames are spread evenly over the same
    stretch of wall-clock time.
    """
    times = {name: [] for name in steps}
    for _, step in steps.items():
        for t in range(warmup):
            step(t)
    n = max(frames.values())
    for i in range(n):
        for name, step in steps.items():
            if len(times[name]) < (i + 1) * frames[name] // n:
                times[name].append(step(warmup + len(times[name])))
    return times


def run(args: argparse.Namespace) -> dict:
    import torch

    from social_pose_diffusion.evaluation.metrics import timing
    from social_pose_diffusion.planning.agent import FacilitatorAgent
    from social_pose_diffusion.policy import Policy, PolicyConfig, load_policy
    from social_pose_diffusion.sources.sim import Renderer, simulate

    torch.set_num_threads(args.threads)
    fast = load_policy(args.model, args.device)
    session = simulate(
        'music_teacher', 4, max(args.frames, args.paper_frames) / 30.0 + 3.0, 30.0, seed=0
    )
    render = Renderer(session, seed=0)
    raw = render.frame  # full 960x480 frames: resizing is part of the timed step
    base = {'neutral_pose': fast.config.neutral_pose, 'max_speed': fast.config.max_speed}
    configs = {'fast': (fast, None, 1), 'node_default': (fast, None, 4)}
    for enc in ('plotted', 'raw'):
        paper = Policy(
            PolicyConfig(encoder=enc, policy='diffusion', sampler='diffusion_x', **base)
        )
        configs[f'paper_{enc}'] = (paper, enc, 1)
    steps, frames = {}, {}
    for name, (policy, enc, samples) in configs.items():
        agent = FacilitatorAgent(policy.to(fast.device).eval(), fps=30.0, samples=samples)
        agent.reset(session.facilitator[0])
        camera = raw if policy.config.encoder_spec.needs_camera else None
        steps[name] = _AgentStep(agent, session, camera)
        frames[name] = args.paper_frames if enc else args.frames
    published = Policy(
        PolicyConfig(
            encoder='plotted', policy='diffusion', d_model=128, layers=4, heads=16, **base
        )
    )
    agent = FacilitatorAgent(published.eval(), fps=30.0)
    agent.reset(session.facilitator[0])
    steps['paper_as_published'] = _published_step(published, agent, session)
    frames['paper_as_published'] = args.paper_frames
    times = _interleaved(steps, frames)
    report = {'threads': args.threads, 'configs': {}}
    for name, (policy, _, samples) in configs.items():
        c = policy.config
        report['configs'][name] = {
            'description': DESCRIPTIONS[name],
            'encoder': c.encoder,
            'policy': c.policy,
            'sampler': c.sampler,
            'samples': samples,
            'evaluations_per_frame': steps[name].evaluations / steps[name].frames,
            'frames': frames[name],
            **timing(times[name]),
        }
    report['configs']['paper_as_published'] = {
        'description': DESCRIPTIONS['paper_as_published'],
        'encoder': 'plotted',
        'policy': 'diffusion',
        'sampler': 'diffusion_x',
        'samples': 1,
        'evaluations_per_frame': 58,
        'encoder_runs_per_frame': 58,
        'frames': args.paper_frames,
        **timing(times['paper_as_published']),
    }
    configs = report['configs']
    report['speedup'] = {
        row: {
            k: {
                'mean': v['mean_ms'] / configs[row]['mean_ms'],
                'p95': v['p95_ms'] / configs[row]['p95_ms'],
            }
            for k, v in configs.items()
            if k.startswith('paper_')
        }
        for row in ROWS
    }
    ratio = report['speedup']['fast']['paper_as_published']
    report['fast_p95_within_10ms'] = configs['fast']['p95_ms'] <= 10.0
    report['fast_50x_paper_as_published'] = min(ratio['mean'], ratio['p95']) >= 50.0
    return report
