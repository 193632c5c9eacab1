"""Policy step time per frame: the fast configuration vs the paper's (image encoder + Diffusion-X T=50+M=8).

Each configuration plans on the same simulated group frames, one frame at a
time, through :class:`FacilitatorAgent` (observation, sampling, integration):

- ``fast``: the shipped model (vector encoder + few-step sampler);
- ``paper_plotted`` / ``paper_raw``: our plotted / raw image encoder with the
  Diffusion-X sampler (58 evaluations), image encoded once per frame;
- ``paper_as_published``: the paper's denoiser size (128-d, 4 blocks, 16 heads)
  re-running the image encoder at every one of the 58 steps, as Pearce et
  al.'s code does.

Timing does not depend on the weights, so the paper configurations use
freshly initialised networks.
"""


def add_arguments(parser):
    parser.add_argument('--model', default='models/default', help='fast model (default: %(default)s)')
    parser.add_argument('--frames', type=int, default=150, help='timed frames per configuration (default: %(default)s)')
    parser.add_argument('--paper-frames', type=int, default=20, help='timed frames of the paper configurations')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads (default: %(default)s)')
    parser.add_argument('--device', default='cpu', help='auto, cpu or cuda (default: %(default)s)')


def _time_agent(agent, session, frames, raw_frame=None, warmup=3):
    import time

    from ..evaluate import group_frame
    times = []
    for t in range(warmup + frames):
        image = raw_frame(t) if raw_frame else None
        start = time.perf_counter()
        plan = agent.plan(group_frame(session, t), image=image)
        if t >= warmup:
            times.append(time.perf_counter() - start)
        agent.commit(plan.stamps_ns[0], plan.poses[0])
    return times


def _time_per_step_encoding(policy, agent, session, frames):
    """Diffusion-X with the observation encoder inside every denoising step (the published implementation)."""
    import time

    import torch

    from ..evaluate import group_frame
    from ..policy import samplers
    c, times = policy.config, []
    for t in range(frames + 2):
        start = time.perf_counter()
        with torch.inference_mode():
            obs = policy.tensors(agent.observation(group_frame(session, t)))
            x = torch.randn((1, c.horizon, c.action_dim))
            samplers.diffusion_x(lambda y, s: policy.net(policy.encoder(obs), y, s.float() / c.timesteps),
                                 x, policy.schedule, c.extra_steps)
        if t >= 2:
            times.append(time.perf_counter() - start)
    return times


def run(args):
    import torch

    from ..agent import FacilitatorAgent
    from ..metrics import timing
    from ..policy import Policy, PolicyConfig, load_policy
    from ..sim import Renderer, simulate
    torch.set_num_threads(args.threads)
    fast = load_policy(args.model, args.device)
    session = simulate('music_teacher', 4, max(args.frames, args.paper_frames) / 30.0 + 3.0, 30.0, seed=0)
    render = Renderer(session, seed=0)
    raw = render.frame  # full 960x480 frames: resizing is part of the timed step
    base = {'neutral_pose': fast.config.neutral_pose, 'max_speed': fast.config.max_speed}
    configs = {'fast': (fast, None)}
    for enc in ('plotted', 'raw'):
        configs[f'paper_{enc}'] = (Policy(PolicyConfig(encoder=enc, policy='diffusion', sampler='diffusion_x', **base)), enc)
    report = {'threads': args.threads, 'configs': {}}
    for name, (policy, enc) in configs.items():
        policy = policy.to(fast.device).eval()
        agent = FacilitatorAgent(policy, fps=30.0)
        agent.reset(session.facilitator[0])
        policy.evaluations = 0
        n = args.frames if name == 'fast' else args.paper_frames
        times = _time_agent(agent, session, n, raw if enc == 'raw' else None)
        c = policy.config
        report['configs'][name] = {'encoder': c.encoder, 'policy': c.policy, 'sampler': c.sampler,
                                   'evaluations_per_frame': policy.evaluations / (n + 3), 'frames': n,
                                   **timing(times)}
    published = Policy(PolicyConfig(encoder='plotted', policy='diffusion', d_model=128, layers=4, heads=16, **base))
    agent = FacilitatorAgent(published.eval(), fps=30.0)
    agent.reset(session.facilitator[0])
    report['configs']['paper_as_published'] = {'encoder': 'plotted', 'policy': 'diffusion', 'sampler': 'diffusion_x',
                                               'evaluations_per_frame': 58, 'encoder_runs_per_frame': 58,
                                               'frames': args.paper_frames,
                                               **timing(_time_per_step_encoding(published, agent, session,
                                                                                args.paper_frames))}
    f = report['configs']['fast']
    report['speedup_mean'] = {k: v['mean_ms'] / f['mean_ms'] for k, v in report['configs'].items() if k != 'fast'}
    report['speedup_p95'] = {k: v['p95_ms'] / f['p95_ms'] for k, v in report['configs'].items() if k != 'fast'}
    report['fast_p95_within_10ms'] = f['p95_ms'] <= 10.0
    return report
