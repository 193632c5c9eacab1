"""`social-pose simulate`: write a synthetic facilitated discussion as a rosbag2 (mcap)."""

from social_pose_diffusion.cli.arguments import (
    MAX_FPS,
    integer,
    number,
    output_path,
    session_length,
)

STYLE_NAMES = ('teacher', 'musician', 'music_teacher')


def register(sub):
    p = sub.add_parser(
        'simulate',
        help='write a simulated group discussion as a rosbag2',
        description='Simulate a facilitated group discussion around a 360 '
        'camera and write it as a rosbag2 (mcap): camera stream, '
        "everyone's keypoints, facilitator ground truth. The bag "
        'appears at --out only when it is complete.',
    )
    p.add_argument(
        '--style', choices=STYLE_NAMES, default='music_teacher', help='facilitator style'
    )
    p.add_argument(
        '--participants',
        type=integer(3, 6),
        default=4,
        help='participants besides the facilitator (3-6)',
    )
    p.add_argument(
        '--seconds',
        type=number(positive=True),
        default=20.0,
        help='session length; with --fps at most 10 h at 30 fps (default: %(default)s)',
    )
    p.add_argument(
        '--fps',
        type=number(high=MAX_FPS, positive=True),
        default=30.0,
        help='camera rate (default: %(default)s)',
    )
    p.add_argument('--seed', type=integer(0), default=0, help='random seed (same seed, same bag)')
    p.add_argument(
        '--width',
        type=integer(64, 7680),
        default=960,
        help='frame width, 64-7680; height is width/2 (default: %(default)s)',
    )
    p.add_argument(
        '--images',
        choices=('compressed', 'raw', 'both'),
        default='compressed',
        help='camera stream as jpeg CompressedImage (small), bgr8 Image, or both',
    )
    p.add_argument(
        '--out', required=True, type=output_path, help='bag directory to create (must not exist)'
    )
    p.set_defaults(func=run)


def run(args):
    from social_pose_diffusion.sources.bags import topic_counts
    from social_pose_diffusion.sources.sim import simulate, write_session_bag

    session_length(args.seconds, args.fps)
    if args.out.exists():
        raise ValueError(f'{args.out} already exists; rosbag2 writes a new directory')
    session = simulate(args.style, args.participants, args.seconds, args.fps, args.seed)
    write_session_bag(session, args.out, args.width, args.width // 2, args.images)
    for topic, (msgtype, count) in sorted(topic_counts(args.out).items()):
        print(f'{topic:36s} {msgtype:34s} {count:6d}')
    print(f'wrote {args.out}')
