"""`social-pose train`: train a policy on session bags (or freshly simulated sessions)."""


def register(sub):
    from social_pose_diffusion.policy.config import ENCODERS, POLICIES
    p = sub.add_parser('train', help='train a facilitator policy (safetensors + JSON config)',
                       description='Train a policy on the first 80 % of each session; writes DIR/model.safetensors, '
                                   'DIR/model.json and a resumable DIR/state.*.')
    p.add_argument('--bags', nargs='*', default=[], help='rosbag2 session directories')
    p.add_argument('--simulate', nargs='*', default=[], metavar='STYLE',
                   help='also train on a simulated session of each style (teacher, musician, music_teacher)')
    p.add_argument('--seconds', type=float, default=120.0, help='length of simulated sessions (default: %(default)s)')
    p.add_argument('--copies', type=int, default=1, help='simulated sessions per style (default: %(default)s)')
    p.add_argument('--encoder', choices=ENCODERS, default='vector')
    p.add_argument('--policy', choices=POLICIES, default='flow')
    p.add_argument('--out', required=True, help='run directory')
    p.add_argument('--steps', type=int, default=3000, help='optimiser steps (default: %(default)s)')
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--horizon', type=int, default=None,
                   help="action chunk length H in frames (default: 0.53 s at the data's rate)")
    p.add_argument('--sampler-steps', type=int, default=4, help='default evaluations of ddim/euler (default: %(default)s)')
    p.add_argument('--prior', choices=('none', 'damped_velocity'), default='none',
                   help='damped_velocity: the network refines a damped constant-velocity '
                        'forecast whose time constant is fitted on the data (holding the pose '
                        'where that fits better), by a gain calibrated on held-back training '
                        'time; default: %(default)s')
    p.add_argument('--noise-scale', type=float, default=1.0,
                   help='initial sampling noise of diffusion/flow policies in [0, 1]; below 1 '
                        'samples nearer the mode, which suits jittery real tracks '
                        '(default: %(default)s)')
    p.add_argument('--dbc-weight', type=float, default=1.0, help='DBC lambda (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='auto', help='auto, cpu or cuda (default: %(default)s)')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = torch default)')
    p.add_argument('--resume', action='store_true', help='continue from DIR/state.*')
    p.add_argument('--export', metavar='STEM', help='also write STEM.safetensors + STEM.json (e.g. models/default)')
    p.set_defaults(func=run)


def run(args):
    import torch

    from social_pose_diffusion.learning.dataset import load_sessions
    from social_pose_diffusion.learning.train import make_config, train
    if args.threads:
        torch.set_num_threads(args.threads)
    sessions, names, raw = load_sessions(args.bags, args.simulate, args.seconds, args.seed, raw=args.encoder == 'raw',
                                         copies=args.copies)
    config = make_config(sessions, encoder=args.encoder, policy=args.policy, horizon=args.horizon,
                         steps=args.sampler_steps, prior=args.prior, noise_scale=args.noise_scale)
    policy, log = train(config, sessions, args.out, steps=args.steps, batch=args.batch, lr=args.lr, device=args.device,
                   seed=args.seed, resume=args.resume, raw_frames=raw, dbc_weight=args.dbc_weight)
    print(f'trained on {len(sessions)} session(s): {", ".join(names)}; final loss {sum(log[-50:]) / max(len(log[-50:]), 1):.4f}')
    print(f'wrote {args.out}/model.safetensors and {args.out}/model.json')
    if args.export:
        policy.save(f'{args.export}.safetensors')
        print(f'wrote {args.export}.safetensors and {args.export}.json')
