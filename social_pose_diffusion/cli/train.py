"""`social-pose train`: train a policy on session bags (or freshly simulated sessions)."""

from social_pose_diffusion.cli.arguments import (
    device,
    integer,
    number,
    output_path,
    renamed,
    session_length,
)


def register(sub):
    from social_pose_diffusion.policy.config import ENCODERS, FAMILIES, PRIORS
    from social_pose_diffusion.policy.prior import REST_S

    p = sub.add_parser(
        'train',
        help='train a facilitator policy (safetensors + JSON config)',
        description='Train a policy on the training samples of the first '
        '80 %% of each session; writes DIR/model.safetensors, '
        'DIR/model.json and a checkpoint (DIR/checkpoint.json and '
        'DIR/checkpoints/) that --resume continues from.',
    )
    p.add_argument('--bags', nargs='*', default=[], help='rosbag2 session directories')
    p.add_argument(
        '--group-topic',
        default=None,
        help="read the bags' group from this topic, e.g. /humans/keypoints/detected (what "
        '`extract --bag` adds to a simulated bag: the group as perception sees it); '
        'default: /humans/keypoints',
    )
    p.add_argument(
        '--simulate',
        nargs='*',
        default=[],
        metavar='STYLE',
        help='also train on a simulated session of each style (teacher, musician, music_teacher)',
    )
    p.add_argument(
        '--seconds',
        type=number(positive=True),
        default=120.0,
        help='length of simulated sessions (default: %(default)s)',
    )
    p.add_argument(
        '--copies',
        type=integer(1, 100),
        default=1,
        help='simulated sessions per style (default: %(default)s)',
    )
    p.add_argument('--encoder', choices=ENCODERS, default='vector')
    p.add_argument('--policy', choices=FAMILIES, default='flow')
    p.add_argument('--out', required=True, type=output_path, help='run directory')
    p.add_argument(
        '--train-steps',
        type=integer(1, 10_000_000),
        default=3000,
        help='optimiser steps (default: %(default)s)',
    )
    renamed(p, '--steps', '--train-steps (optimiser steps; --sampler-steps is the sampler)')
    p.add_argument(
        '--batch',
        type=integer(1, 65536),
        default=64,
        help='training samples per optimiser step (default: %(default)s)',
    )
    p.add_argument(
        '--lr',
        type=number(high=1.0, positive=True),
        default=1e-3,
        help='learning rate (default: %(default)s)',
    )
    p.add_argument(
        '--horizon',
        type=integer(1, 1000),
        default=None,
        help="action chunk length H in frames (default: 0.53 s at the data's rate)",
    )
    p.add_argument(
        '--prior',
        choices=PRIORS,
        default='none',
        help='damped_velocity: the network refines a damped constant-velocity '
        'forecast whose time constant is fitted on the data (holding the pose '
        'where that fits better), by a gain chosen in closed-loop rollouts on '
        'held-back training time; rest: the same forecast also pulled toward the '
        "recording's rest posture (for your own recordings); default: %(default)s",
    )
    p.add_argument(
        '--rest-s',
        type=number(0.0, 3600.0),
        default=None,
        help=f"time constant of the rest prior's pull in seconds (with --prior rest), 0 for "
        f'none (default: {REST_S:g})',
    )
    p.add_argument(
        '--noise-scale',
        type=number(0.0, 1.0),
        default=1.0,
        help='initial sampling noise of diffusion/flow policies in [0, 1]; below 1 '
        'samples nearer the mode, which suits jittery real tracks '
        '(default: %(default)s)',
    )
    p.add_argument(
        '--sampler-steps',
        type=integer(1, 10_000),
        default=4,
        help="sampler steps: network evaluations of ddim/euler, the model's default "
        '(default: %(default)s)',
    )
    p.add_argument(
        '--dbc-weight', type=number(0.0), default=1.0, help='DBC lambda (default: %(default)s)'
    )
    p.add_argument(
        '--memory',
        type=number(high=3600.0, positive=True),
        nargs='*',
        default=[],
        metavar='SECONDS',
        help="participants' motion memory: time constants of their averaged arm "
        'activity, e.g. 2 30 (who spoke recently and for how long; default: none)',
    )
    p.add_argument(
        '--condition-on-style',
        action='store_true',
        help="give the policy the sessions' style (/session/info 'style') as an input; "
        'the node then takes a style parameter',
    )
    p.add_argument(
        '--style-units',
        action='store_true',
        help="with --condition-on-style: each style's actions in units of their own spread, "
        "so one network does not give every style a size between the styles'",
    )
    group = p.add_argument_group('training data that teaches responding instead of coasting')
    group.add_argument(
        '--history-dropout',
        type=number(0.0, 1.0),
        default=0.0,
        help="share of training samples that hide the facilitator's past deltas "
        '(default: %(default)s)',
    )
    group.add_argument(
        '--pose-perturbation',
        type=number(0.0, 10.0),
        default=0.0,
        help='perturbed samples (head pushed off, a chunk that returns) '
        'added per training sample (default: %(default)s)',
    )
    group.add_argument(
        '--perturbation-scale',
        type=number(0.0, 10.0),
        default=1.5,
        help="head push size, in units of the session's head-yaw spread (default: %(default)s)",
    )
    group.add_argument(
        '--posture-mix',
        type=number(0.0, 1.0),
        default=0.0,
        help='perturbed samples also push the whole body up to this share of the way '
        'to a posture taken elsewhere in the session (default: %(default)s)',
    )
    group.add_argument(
        '--return-s',
        type=number(high=10.0, positive=True),
        default=0.3,
        help='time constant of the return in seconds (default: %(default)s)',
    )
    group.add_argument(
        '--onset-weight',
        type=number(0.0, 100.0),
        default=0.0,
        help='extra sampling weight of the second after an attention change '
        '(default: %(default)s)',
    )
    group.add_argument(
        '--style-balance',
        type=number(0.0, 4.0),
        default=0.0,
        help="draw each style's samples (pooled action rms / its rms) ** x as often "
        '(default: %(default)s)',
    )
    group.add_argument(
        '--empty-room',
        type=number(0.0, 10.0),
        default=0.0,
        help='samples with nobody in view that hold still, added per training sample '
        '(default: %(default)s)',
    )
    group.add_argument(
        '--closed-loop-rounds',
        type=integer(0, 20),
        default=0,
        help='after --train-steps, this many rounds of: roll the policy out closed loop on '
        'the training part of its sessions (4 plans, as the node) and train '
        '--closed-loop-steps more with every state it visited labelled back to the '
        'demonstration (DAgger; default: %(default)s)',
    )
    group.add_argument(
        '--closed-loop-steps',
        type=integer(1, 10_000_000),
        default=3000,
        help='optimiser steps per closed-loop round (default: %(default)s)',
    )
    group.add_argument(
        '--group-dropout',
        type=number(0.0, 1.0),
        default=0.0,
        help='share of samples that see nobody, for classifier-free guidance '
        '(default: %(default)s)',
    )
    group.add_argument(
        '--guidance',
        type=number(0.0, 100.0),
        default=1.0,
        help="the model's default guidance scale w (1: none; default: %(default)s)",
    )
    p.add_argument(
        '--ema',
        type=number(0.0, 0.99999),
        default=0.999,
        help="decay of the weights' moving average the run ships (0: the last step's "
        'weights; default: %(default)s)',
    )
    p.add_argument(
        '--plan-weight',
        type=number(0.0, 1.0, positive=True),
        default=1.0,
        help="a new plan's weight against the last one where they overlap (temporal "
        'ensembling; 1: none; default: %(default)s)',
    )
    p.add_argument(
        '--d-model',
        type=integer(8, 1024),
        default=64,
        help='width of the observation and action networks (default: %(default)s)',
    )
    p.add_argument(
        '--layers',
        type=integer(1, 12),
        default=2,
        help='Transformer blocks of the action network (default: %(default)s)',
    )
    p.add_argument(
        '--heads',
        type=integer(1, 64),
        default=4,
        help='attention heads; must divide --d-model (default: %(default)s)',
    )
    p.add_argument('--seed', type=integer(0), default=0, help='random seed (default: %(default)s)')
    p.add_argument(
        '--sim-seed',
        type=integer(0),
        default=None,
        help='seed of the simulated sessions (default: --seed)',
    )
    p.add_argument(
        '--device',
        type=device,
        default='auto',
        help='auto, cpu, cuda or cuda:N (default: %(default)s)',
    )
    p.add_argument(
        '--threads', type=integer(0, 1024), default=0, help='torch CPU threads (0 = torch default)'
    )
    p.add_argument(
        '--resume',
        action='store_true',
        help='continue from the checkpoint in DIR, refusing one that is corrupt or was '
        'trained with other options; without a checkpoint it says so and starts '
        'fresh',
    )
    p.add_argument(
        '--export',
        metavar='STEM',
        type=output_path,
        help='also write STEM.safetensors + STEM.json (e.g. models/default)',
    )
    p.set_defaults(func=run)


def run(args):
    import sys

    import torch

    from social_pose_diffusion.learning import checkpoint
    from social_pose_diffusion.learning.augment import Augmentation
    from social_pose_diffusion.learning.dataset import load_sessions
    from social_pose_diffusion.learning.train import make_config
    from social_pose_diffusion.observation.encoders import ENCODERS

    if args.simulate:
        session_length(args.seconds, 30.0)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f'--out {args.out} is a file, not a run directory')
    if args.resume and not checkpoint.exists(args.out) and (args.out / 'state.json').exists():
        raise ValueError(
            f'{args.out / "state.json"} is a checkpoint of an older layout that '
            '--resume cannot read; train into another --out'
        )
    if args.resume and not checkpoint.exists(args.out):
        print(
            f'social-pose train: no checkpoint in {args.out} ({checkpoint.POINTER}); '
            'starting fresh',
            file=sys.stderr,
        )
    sessions, names, raw = load_sessions(
        args.bags,
        args.simulate,
        args.seconds,
        args.seed if args.sim_seed is None else args.sim_seed,
        raw=ENCODERS[args.encoder].needs_camera,
        copies=args.copies,
        group_topic=args.group_topic,
    )
    styles = ()
    if args.condition_on_style:
        named = [s.info.get('style') for s in sessions]
        if not all(named):
            raise ValueError(
                "--condition-on-style needs a style in every session's /session/info; "
                f'missing in {", ".join(n for n, st in zip(names, named) if not st)}'
            )
        styles = tuple(sorted(set(named)))
    config = make_config(
        sessions,
        encoder=args.encoder,
        policy=args.policy,
        horizon=args.horizon,
        steps=args.sampler_steps,
        memory_s=tuple(args.memory),
        styles=styles,
        group_dropout=args.group_dropout,
        guidance=args.guidance,
        prior=args.prior,
        prior_rest_s=args.rest_s,
        noise_scale=args.noise_scale,
        plan_weight=args.plan_weight,
        style_units=args.style_units,
        d_model=args.d_model,
        layers=args.layers,
        heads=args.heads,
    )
    augmentation = Augmentation(
        history_dropout=args.history_dropout,
        pose_perturbation=args.pose_perturbation,
        perturbation_scale=args.perturbation_scale,
        return_s=args.return_s,
        onset_weight=args.onset_weight,
        style_balance=args.style_balance,
        posture_mix=args.posture_mix,
        empty_room=args.empty_room,
    )
    policy, log = _train_in_rounds(args, config, sessions, raw, augmentation)
    final = sum(log[-50:]) / max(len(log[-50:]), 1)
    print(
        f'trained on {len(sessions)} session(s): {", ".join(names)}; '
        f'{len(log)} optimiser steps, final loss {final:.4f}'
    )
    print(f'wrote {args.out}/model.safetensors and {args.out}/model.json')
    if args.export:
        policy.save(f'{args.export}.safetensors')
        print(f'wrote {args.export}.safetensors and {args.export}.json')


def _train_in_rounds(args, config, sessions, raw, augmentation):
    """``train`` to ``--train-steps``, then each closed-loop round: visit, train on.

    A round's visited states are saved in the run (``closed_loop_<r>.npz``) before it trains,
    so ``--resume`` continues any stage with the same states.
    """
    import torch

    from social_pose_diffusion.learning import checkpoint
    from social_pose_diffusion.learning.closed_loop import Visits, visit
    from social_pose_diffusion.learning.train import train
    from social_pose_diffusion.policy import load_policy

    rounds = args.closed_loop_rounds
    if rounds and config.encoder_spec.image_input:
        raise ValueError('--closed-loop-rounds needs a keypoint encoder (vector, people)')
    done = checkpoint.saved_step(args.out) if args.resume else None
    visits, policy, log = [], None, None
    for r in range(rounds + 1):
        target = args.train_steps + r * args.closed_loop_steps
        if r:
            path = args.out / f'closed_loop_{r}.npz'
            if args.resume and path.is_file():
                found = Visits.load(path)
            else:
                torch.manual_seed(args.seed + r)
                driver = policy or load_policy(args.out, args.device)
                found = visit(driver.eval(), sessions)
                found.save(path)
            visits.append(found)
        if r < rounds and done is not None and done >= target:
            continue  # a stage an earlier run finished
        policy, log = train(
            config,
            sessions,
            args.out,
            train_steps=target,
            batch=args.batch,
            lr=args.lr,
            device=args.device,
            seed=args.seed,
            resume=args.resume or r > 0,
            raw_frames=raw,
            dbc_weight=args.dbc_weight,
            augmentation=augmentation,
            ema_decay=args.ema,
            visits=Visits.join(visits) if visits else None,
        )
    return policy, log
