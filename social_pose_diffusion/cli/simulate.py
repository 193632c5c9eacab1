"""`social-pose simulate`: write a synthetic facilitated discussion as a rosbag2 (mcap)."""
import argparse
from pathlib import Path

STYLE_NAMES = ('teacher', 'musician', 'music_teacher')


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f'must be positive, got {text}')
        return value
    return parse


def _participants(text):
    value = int(text)
    if not 3 <= value <= 6:
        raise argparse.ArgumentTypeError(f'must be 3 to 6, got {text}')
    return value


def register(sub):
    p = sub.add_parser('simulate', help='write a simulated group discussion as a rosbag2',
                       description='Simulate a facilitated group discussion around a 360 camera and write it as a '
                                   'rosbag2 (mcap): camera stream, everyone\'s keypoints, facilitator ground truth.')
    p.add_argument('--style', choices=STYLE_NAMES, default='music_teacher', help='facilitator style')
    p.add_argument('--participants', type=_participants, default=4, help='participants besides the facilitator (3-6)')
    p.add_argument('--seconds', type=_positive(float), default=20.0, help='session length')
    p.add_argument('--fps', type=_positive(float), default=30.0, help='camera rate')
    p.add_argument('--seed', type=int, default=0, help='random seed (same seed, same bag)')
    p.add_argument('--width', type=_positive(int), default=960, help='frame width; height is width/2')
    p.add_argument('--images', choices=('compressed', 'raw', 'both'), default='compressed',
                   help='camera stream as jpeg CompressedImage (small), bgr8 Image, or both')
    p.add_argument('--out', required=True, type=Path, help='bag directory to create (must not exist)')
    p.set_defaults(func=run)


def run(args):
    from social_pose_diffusion.sources.bags import topic_counts
    from social_pose_diffusion.sources.sim import simulate, write_session_bag
    if args.out.exists():
        raise ValueError(f'{args.out} already exists; rosbag2 writes a new directory')
    session = simulate(args.style, args.participants, args.seconds, args.fps, args.seed)
    write_session_bag(session, args.out, args.width, args.width // 2, args.images)
    for topic, (msgtype, count) in sorted(topic_counts(args.out).items()):
        print(f'{topic:36s} {msgtype:34s} {count:6d}')
    print(f'wrote {args.out}')
