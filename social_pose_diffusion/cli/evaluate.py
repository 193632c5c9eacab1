"""`social-pose evaluate`: offline metrics of a model on held-out session time, or the paper table."""


def register(sub):
    p = sub.add_parser('evaluate', help='evaluate a model (JSON + Markdown + plots) or run the paper table',
                       description='Evaluate a model on the last 20 % of each session: MPJPE one-step and of open-loop '
                                   'rollouts, bone-length error, planning time, best-of-k ADE, diversity, invitation '
                                   'hands. --paper-table instead trains and evaluates the whole grid.')
    p.add_argument('--bags', nargs='*', default=[], help='rosbag2 session directories')
    p.add_argument('--simulate', nargs='*', default=[], metavar='STYLE', help='also evaluate on simulated sessions')
    p.add_argument('--seconds', type=float, default=120.0, help='length of simulated sessions (default: %(default)s)')
    p.add_argument('--seed', type=int, default=1000, help='first seed of simulated sessions (default: %(default)s)')
    p.add_argument('--model', default='models/default', help='model path (default: %(default)s)')
    p.add_argument('--report', default='evaluation.json', help='JSON report; .md and .png next to it')
    p.add_argument('--sampler', default=None, help='diffusion_x, ddpm, ddim (diffusion) or euler (flow)')
    p.add_argument('--steps', type=int, default=None, help='evaluations of ddim/euler')
    p.add_argument('--samples', type=int, default=8, help='k for best-of-k and diversity (default: %(default)s)')
    p.add_argument('--starts', type=int, default=3, help='rollouts per session (default: %(default)s)')
    p.add_argument('--replan', type=int, default=1, help='frames executed per plan in rollouts (default: %(default)s)')
    p.add_argument('--agent-samples', type=int, default=4,
                   help="plans per step in rollouts, medoid executed (the policy node's 'samples'; "
                        'default: %(default)s)')
    p.add_argument('--social', action='store_true',
                   help='add the closed-loop social evaluation: each facilitator (the policy as the node runs it, '
                        'hold, constant velocity, a rule facilitator) drives itself over the held-out part; head '
                        'turns to the speaker, invitations, counterfactual groups, motion realism')
    p.add_argument('--device', default='auto')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads (default: %(default)s)')
    p.add_argument('--paper-table', action='store_true', help='train + evaluate the grid on the three styles')
    p.add_argument('--out', default='benchmarks/results/paper_table.json', help='paper table JSON (with --paper-table)')
    p.add_argument('--quick', action='store_true', help='paper table with tiny budgets (smoke test)')
    p.add_argument('--replay', metavar='SESSION_BAG', default=None,
                   help='live replay evaluation instead: play the bag at 1x (simulated time) into the node graph '
                        'running as separate processes over DDS, record its outputs and report MPJPE, latency, '
                        'output rate and dropped frames to --report')
    p.add_argument('--replay-input', choices=('image', 'keypoints'), default='image',
                   help='with --replay: the camera stream through perception, or the true keypoints through the '
                        'external-detector input (default: %(default)s)')
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
    from social_pose_diffusion.learning.dataset import load_sessions
    from social_pose_diffusion.evaluation.offline import evaluate, write_report
    from social_pose_diffusion.policy import load_policy
    policy = load_policy(args.model, args.device)
    sessions, names, raw = load_sessions(args.bags, args.simulate, args.seconds, args.seed,
                                         raw=policy.config.encoder == 'raw')
    report = evaluate(policy, sessions, names, args.samples, args.sampler, args.steps, args.starts, args.replan, raw,
                      agent_samples=args.agent_samples)
    if args.social:
        from social_pose_diffusion.evaluation.social import evaluate_social
        report['social'] = evaluate_social(policy, sessions, names, plans=args.agent_samples, sampler=args.sampler,
                                           steps=args.steps)
    paths = write_report(report, args.report)
    print(open(paths[1]).read())
    print('wrote ' + ', '.join(paths))
