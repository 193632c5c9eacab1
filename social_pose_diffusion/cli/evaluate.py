"""`social-pose evaluate`: offline metrics of a model, or the paper table.

The metrics are measured on held-out session time.
"""

import sys

from social_pose_diffusion.cli.arguments import (
    device,
    integer,
    number,
    output_path,
    renamed,
    session_length,
)


def register(sub):
    from social_pose_diffusion.policy.config import SAMPLERS

    p = sub.add_parser(
        'evaluate',
        help='evaluate a model (JSON + Markdown + plots) or run the paper table',
        description='Evaluate a model on the last 20 %% of each session: MPJPE '
        'one-step and of open-loop rollouts, bone-length error, '
        'planning time, best-of-k ADE and diversity of k sampled '
        'chunks, invitation hands. --paper-table instead trains and '
        'evaluates the whole grid.',
    )
    p.add_argument('--bags', nargs='*', default=[], help='rosbag2 session directories')
    p.add_argument(
        '--simulate',
        nargs='*',
        default=[],
        metavar='STYLE',
        help='also evaluate on simulated sessions',
    )
    p.add_argument(
        '--seconds',
        type=number(positive=True),
        default=120.0,
        help='length of simulated sessions (default: %(default)s)',
    )
    p.add_argument(
        '--seed',
        type=integer(0),
        default=1000,
        help='first seed of simulated sessions (default: %(default)s)',
    )
    p.add_argument(
        '--model', default=None, help='model path (default: the packaged default model)'
    )
    p.add_argument(
        '--report',
        type=output_path,
        default='evaluation.json',
        help='JSON report; .md and .png next to it',
    )
    p.add_argument(
        '--sampler',
        choices=SAMPLERS,
        default=None,
        help="override the model's sampler: diffusion_x, ddpm, ddim (diffusion), "
        'euler (flow), direct (bc, dbc)',
    )
    p.add_argument(
        '--sampler-steps',
        type=integer(1, 10_000),
        default=None,
        help="sampler steps: network evaluations of ddim/euler (default: the model's)",
    )
    renamed(p, '--steps', '--sampler-steps (network evaluations of ddim/euler)')
    p.add_argument(
        '--k',
        type=integer(1, 1024),
        default=8,
        help='chunks sampled per observation for best-of-k ADE and diversity '
        '(default: %(default)s)',
    )
    renamed(p, '--samples', '--k (chunks per observation for best-of-k and diversity)')
    p.add_argument(
        '--starts',
        type=integer(1, 1000),
        default=3,
        help='rollouts per session (default: %(default)s)',
    )
    p.add_argument(
        '--replan',
        type=integer(1, 1000),
        default=1,
        help='frames executed per plan in rollouts (default: %(default)s)',
    )
    p.add_argument(
        '--plans',
        type=integer(1, 1024),
        default=4,
        help='plans the agent samples per step in rollouts, medoid executed '
        "(the policy node's 'samples'; default: %(default)s)",
    )
    renamed(p, '--agent-samples', '--plans (plans sampled per agent step)')
    p.add_argument(
        '--social',
        action='store_true',
        help='add the closed-loop social evaluation: each facilitator (the policy as the '
        'node runs it, the demonstration, hold, constant velocity, a rule '
        'facilitator) drives itself over the held-out part: head turns to the '
        'speaker, invitations, counterfactual groups, motion realism',
    )
    p.add_argument(
        '--device',
        type=device,
        default='auto',
        help='auto, cpu, cuda or cuda:N (default: %(default)s)',
    )
    p.add_argument(
        '--threads',
        type=integer(1, 1024),
        default=1,
        help='torch CPU threads (default: %(default)s)',
    )
    p.add_argument(
        '--paper-table', action='store_true', help='train + evaluate the grid on the three styles'
    )
    p.add_argument(
        '--out',
        type=output_path,
        default='benchmarks/results/paper_table.json',
        help='paper table JSON (with --paper-table)',
    )
    p.add_argument(
        '--quick', action='store_true', help='paper table with tiny budgets (smoke test)'
    )
    p.add_argument(
        '--replay',
        metavar='SESSION_BAG',
        default=None,
        help='live replay evaluation instead: play the bag at 1x (simulated time) '
        'into the node graph running as separate processes over DDS, record '
        'its outputs and report MPJPE, latency, output rate and dropped frames '
        'to --report',
    )
    p.add_argument(
        '--replay-input',
        choices=('image', 'keypoints'),
        default='image',
        help='with --replay: the camera stream through perception, or the true '
        'keypoints through the external-detector input (default: %(default)s)',
    )
    p.set_defaults(func=run)


def run(args):
    if args.replay:
        from social_pose_diffusion.ros.replay import evaluate_command

        return evaluate_command(args)
    import torch

    torch.set_num_threads(args.threads)
    if args.paper_table:
        from social_pose_diffusion.bench.paper_table import run_table

        run_table(args.out, quick=args.quick, device=args.device)
        return 0
    from social_pose_diffusion.evaluation.offline import evaluate, write_report
    from social_pose_diffusion.learning.dataset import load_sessions
    from social_pose_diffusion.policy import load_policy

    if args.simulate:
        session_length(args.seconds, 30.0)
    policy = load_policy(args.model, args.device)
    if args.sampler:
        policy.config.family.sampler(args.sampler)  # a ValueError names the model's samplers
    sessions, names, raw = load_sessions(
        args.bags,
        args.simulate,
        args.seconds,
        args.seed,
        raw=policy.config.encoder_spec.needs_camera,
    )
    report = evaluate(
        policy,
        sessions,
        names,
        args.k,
        args.sampler,
        args.sampler_steps,
        args.starts,
        args.replan,
        raw,
        agent_samples=args.plans,
    )
    for entry in report['sessions']:
        for warning in entry['warnings']:
            print(f'social-pose evaluate: {entry["name"]}: {warning}', file=sys.stderr)
    if args.social:
        from social_pose_diffusion.evaluation.social import evaluate_social

        report['social'] = evaluate_social(
            policy,
            sessions,
            names,
            plans=args.plans,
            sampler=args.sampler,
            steps=args.sampler_steps,
        )
    paths = write_report(report, args.report)
    print(open(paths[1]).read())
    print('wrote ' + ', '.join(paths))
