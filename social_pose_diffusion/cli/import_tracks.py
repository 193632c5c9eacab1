"""`social-pose import`: another detector's 2D keypoint tracks as a session bag.

The tracks come as COCO JSON or a table.
"""

import argparse
import json
from pathlib import Path

from social_pose_diffusion.cli.arguments import integer, number, output_path, seat, seat_tolerance


def _joints(text):
    names = tuple(n.strip() for n in text.split(','))
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(f'a comma-separated list of joint names, got {text!r}')
    return names


def register(sub):
    p = sub.add_parser(
        'import',
        help='2D keypoint tracks of another detector (COCO JSON, CSV/NPZ) as a bag',
        description='Convert 2D keypoints of a 360 panorama (tracked or not) into a session '
        'bag for train and evaluate. COCO/PoseTrack/AlphaPose-style JSON: track ids from '
        "track_id or AlphaPose's idx (none at all: people are tracked on import), frames "
        'from image ids (numbers or names holding one); a CSV/NPZ table has the columns '
        'stamp (s) or frame, track, joint (name or index), x, y, conf (pixels). Joints '
        'outside our 13 (knees, a neck) are ignored, missing ones (ears) are unseen; points '
        'outside the image are counted and dropped.',
    )
    p.add_argument('input', type=Path, help='keypoints: .json (COCO-style) or .csv/.npz (table)')
    p.add_argument(
        '--out',
        required=True,
        type=output_path,
        help='session bag directory to create (must not exist)',
    )
    p.add_argument(
        '--fps',
        type=number(positive=True),
        help='frame rate when frames carry no stamps (stamp = frame / fps); default: the stamps',
    )
    p.add_argument(
        '--width', type=integer(1), help='image width in pixels (default: from the COCO images)'
    )
    p.add_argument(
        '--height', type=integer(1), help='image height in pixels (default: from the COCO images)'
    )
    p.add_argument(
        '--projection',
        choices=('equirect', 'cylindrical'),
        default='equirect',
        help='equirectangular 360 image, or a cylindrical stitched panorama '
        '(default: %(default)s)',
    )
    p.add_argument(
        '--vfov',
        type=number(positive=True),
        metavar='DEG',
        help='vertical field of view of a cylindrical panorama in degrees',
    )
    p.add_argument(
        '--joints',
        type=_joints,
        metavar='NAMES',
        help='the source joint order, comma-separated, in our names (nose, left_eye, '
        'right_eye, left_ear, right_ear, left/right_shoulder, _elbow, _wrist, '
        '_hip); other names are ignored joints; default: the COCO category '
        'keypoints, else the 17 COCO joints (also for Halpe-26/136 and COCO-WholeBody '
        'files, which start with them)',
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        '--facilitator-id', type=integer(0), metavar='N', help='the facilitator is track N'
    )
    who.add_argument(
        '--facilitator-seat',
        type=seat,
        metavar='U',
        help='the facilitator is the person nearest this seat azimuth u, per frame',
    )
    p.add_argument(
        '--seat-tolerance',
        type=seat_tolerance,
        default=0.05,
        help='max |u - seat| for --facilitator-seat (default: %(default)s = 18 deg)',
    )
    p.set_defaults(func=run)


def run(args):
    from social_pose_diffusion.sources.importers import Projection, import_file

    if args.projection == 'cylindrical' and args.vfov is None:
        raise ValueError(
            "--projection cylindrical needs --vfov (the panorama's vertical field of view)"
        )
    if args.projection == 'equirect' and args.vfov is not None:
        raise ValueError('--vfov only applies with --projection cylindrical')

    def projection(size):
        width, height = size or (None, None)
        width, height = args.width or width, args.height or height
        if width is None or height is None:
            raise ValueError(
                'give --width and --height (the input does not record its image size)'
            )
        return Projection(args.projection, width, height, args.vfov or 0.0)

    report = import_file(
        args.input,
        args.out,
        projection,
        args.fps,
        args.joints,
        facilitator_id=args.facilitator_id,
        facilitator_seat=args.facilitator_seat,
        seat_tolerance=args.seat_tolerance,
    )
    print(json.dumps(report))
    dropped = {k: v for k, v in report['dropped'].items() if v}
    if dropped:
        print(
            'not imported: '
            + ', '.join(f'{v} point(s) {k.replace("_", " ")}' for k, v in dropped.items())
        )
    if report['facilitator_gaps']:
        print(
            f'the facilitator is missing in {report["facilitator_gaps"]} of {report["frames"]} '
            f'frames '
            '(gaps: training and evaluation split the session there)'
        )
    print(f'wrote {args.out}')
