"""`social-pose extract`: everyone's keypoints from a 360 image or from a bag.

From a 360 image they are written as JSON; from a bag's camera stream, as a new bag.
"""

import argparse
import json
import sys
from pathlib import Path

from social_pose_diffusion.cli.arguments import integer, output_path, seat, seat_tolerance

MAX_IMAGE_BYTES = 256 << 20  # an 8K equirectangular PNG is well below this


def _overlay(text):
    """An image path cv2 can write (by its extension), refused before any work."""
    import cv2

    path = output_path(text)
    if not cv2.haveImageWriter(str(path)):
        raise argparse.ArgumentTypeError(
            f'{text}: cannot write images of type '
            f'{path.suffix or "(no extension)"}; use .png or .jpg'
        )
    return path


def register(sub):
    p = sub.add_parser(
        'extract',
        help="keypoints of everyone in a 360 image or a bag's camera stream",
        description="Find and track everyone's keypoints in equirectangular frames. With --image, "
        'write them as JSON (and optionally an overlay); with --bag, copy the bag and add '
        'the keypoint topic(s) so a real recording becomes training data.',
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('--image', type=Path, help='equirectangular image (2:1), e.g. PANO.jpg')
    source.add_argument('--bag', type=Path, help='rosbag2 directory with a camera topic')
    p.add_argument(
        '--out',
        required=True,
        type=output_path,
        help=(
            'keypoints JSON (with --image) or bag directory to create (with --bag, must not exist)'
        ),
    )
    p.add_argument(
        '--overlay',
        type=_overlay,
        help='with --image: also draw the skeletons onto a copy (png/jpg)',
    )
    p.add_argument(
        '--topic',
        help='with --bag: camera topic (default: the raw Image topic, else the compressed one)',
    )
    p.add_argument(
        '--keypoints-topic',
        help='participants topic (default /humans/keypoints, or '
        '/humans/keypoints/detected when the bag already has it)',
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        '--facilitator-seat',
        type=seat,
        metavar='U',
        help='the facilitator is the person nearest this seat azimuth u (0.5 = camera forward)',
    )
    who.add_argument(
        '--facilitator-id',
        type=integer(0),
        metavar='N',
        help='the facilitator is tracked id N (e.g. read off a first --overlay)',
    )
    p.add_argument(
        '--seat-tolerance',
        type=seat_tolerance,
        default=0.05,
        help='max |u - seat| for --facilitator-seat (default: %(default)s = 18 deg)',
    )
    p.add_argument(
        '--facilitator-topic',
        help='facilitator topic (default /facilitator/ground_truth, or '
        '/facilitator/ground_truth/detected when the bag already has it)',
    )
    p.add_argument(
        '--discovery-period',
        type=integer(0, 100_000),
        default=30,
        help='frames per re-scan for new people (default: %(default)s; 0 = first frame only)',
    )
    p.add_argument(
        '--max-people',
        type=integer(1, 256),
        default=16,
        help='most people kept (default: %(default)s)',
    )
    p.set_defaults(func=run)


def run(args):
    if args.image is not None:
        bag_only = [
            f'--{n}'
            for n in (
                'topic',
                'keypoints_topic',
                'facilitator_seat',
                'facilitator_id',
                'facilitator_topic',
            )
            if getattr(args, n) is not None
        ]
        if bag_only:
            raise ValueError(
                f'only with --bag: {", ".join(o.replace("_", "-") for o in bag_only)}'
            )
        return extract_image(args)
    if args.overlay is not None:
        raise ValueError('--overlay only applies with --image')
    return extract_bag(args)


def _extractor(args):
    """The perception core as the node runs it, but updating everyone every frame.

    Every frame means ``budget_ms=0``: training data must not depend on how
    fast this machine is.
    """
    from social_pose_diffusion.perception import make_extractor

    return make_extractor(
        'mediapipe',
        discovery_period=args.discovery_period,
        max_people=args.max_people,
        budget_ms=0,
    )


def extract_image(args):
    import cv2

    from social_pose_diffusion.core.atomic import write_bytes, write_json
    from social_pose_diffusion.core.skeleton import JOINT_NAMES
    from social_pose_diffusion.msgs.images import compressed_to_bgr
    from social_pose_diffusion.observation.raster import draw_skeleton
    from social_pose_diffusion.perception import PerceptionError
    from social_pose_diffusion.perception.validate import check_panorama

    if not args.image.is_file():
        raise FileNotFoundError(f'no image at {args.image}')
    if args.image.stat().st_size > MAX_IMAGE_BYTES:
        raise PerceptionError(f'{args.image}: larger than {MAX_IMAGE_BYTES} bytes')
    try:  # the pixel count is read from the header before decoding
        bgr = compressed_to_bgr(args.image.read_bytes())
    except ValueError as exc:
        raise PerceptionError(f'{args.image} is not a readable image: {exc}') from None
    try:  # before the detector loads: a wrong image fails at once
        check_panorama(bgr)
    except PerceptionError as exc:
        raise PerceptionError(f'{args.image}: {exc}') from None
    extractor = _extractor(args)
    frame = extractor.process(bgr, 0)
    people = [
        {'id': int(i), 'keypoints': kp.round(5).tolist()}
        for i, kp in zip(frame.ids, frame.keypoints)
    ]
    write_json(
        args.out,
        {
            'image': str(args.image),
            'width': bgr.shape[1],
            'height': bgr.shape[0],
            'joints': list(JOINT_NAMES),
            'keypoint': ['u', 'v', 'conf'],
            'people': people,
            'stats': extractor.stats,
        },
    )
    print(f'{len(people)} people in {args.image}; wrote {args.out}')
    if args.overlay is not None:
        h, w = bgr.shape[:2]
        for person_id, kp in zip(frame.ids, frame.keypoints):
            draw_skeleton(bgr, kp, (0, 255, 0))
            top = kp[kp[:, 2] > 0.5] if (kp[:, 2] > 0.5).any() else kp
            cv2.putText(
                bgr,
                str(person_id),
                (int(top[:, 0].min() * w), int(top[:, 1].min() * h) - 8),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.8,
                (0, 255, 255),
                2,
                cv2.LINE_AA,
            )
        ok, encoded = cv2.imencode(args.overlay.suffix, bgr)
        if not ok:
            raise ValueError(f'--overlay {args.overlay}: could not encode the image')
        write_bytes(args.overlay, encoded.tobytes())
        print(f'wrote {args.overlay}')


def extract_bag(args):
    from tqdm import tqdm

    from social_pose_diffusion.core.frames import single_person
    from social_pose_diffusion.msgs.images import message_to_bgr
    from social_pose_diffusion.msgs.keypoint_cloud import stamp_ns
    from social_pose_diffusion.perception import PerceptionError, identify_facilitator
    from social_pose_diffusion.sources.bags import (
        COMPRESSED,
        FACILITATOR_TOPIC,
        GROUP_TOPIC,
        IMAGE,
        SessionWriter,
        camera_topic,
        read_messages,
        topic_counts,
    )

    if not args.bag.exists():
        raise FileNotFoundError(f'no bag at {args.bag}')
    if args.out.exists():
        raise ValueError(f'{args.out} already exists; rosbag2 writes a new directory')
    topics = topic_counts(args.bag)
    camera = args.topic or camera_topic(args.bag)
    if camera is None or camera not in topics or topics[camera][0] not in (IMAGE, COMPRESSED):
        raise ValueError(
            f'{args.bag} has no Image or CompressedImage topic {args.topic or ""} '
            f'(topics: {", ".join(sorted(topics))})'
        )
    group_topic = args.keypoints_topic or (
        GROUP_TOPIC + '/detected' if GROUP_TOPIC in topics else GROUP_TOPIC
    )
    fac_topic = args.facilitator_topic or (
        FACILITATOR_TOPIC + '/detected' if FACILITATOR_TOPIC in topics else FACILITATOR_TOPIC
    )
    for topic in (group_topic, fac_topic):
        if topic in topics:
            raise ValueError(f'{args.bag} already has {topic}; choose another output topic')
    split = args.facilitator_seat is not None or args.facilitator_id is not None
    extractor = _extractor(args)
    people = frames = facilitators = 0
    skipped = []
    with SessionWriter(args.out) as writer:
        for topic, t, msg in tqdm(
            read_messages(args.bag),
            total=sum(c for _, c in topics.values()),
            unit='msg',
            desc='extract',
        ):
            writer.write(topic, topics[topic][0], t, msg)
            if topic != camera:
                continue
            stamp = stamp_ns(msg)
            try:
                frame = extractor.process(message_to_bgr(msg), stamp)
            except ValueError as exc:  # undecodable or unusable frame: skipped, counted
                skipped.append(f'camera frame stamped {stamp * 1e-9:.3f} s: {exc}')
                continue
            if split:
                frame, facilitator = identify_facilitator(
                    frame,
                    seat_u=args.facilitator_seat,
                    tolerance=args.seat_tolerance,
                    facilitator_id=args.facilitator_id,
                )
                if facilitator is not None:
                    writer.keypoints(fac_topic, single_person(stamp, facilitator))
                    facilitators += 1
            writer.keypoints(group_topic, frame)
            frames, people = frames + 1, people + len(frame)
        if not frames:  # raised inside the writer: no bag appears at --out
            first = f'; first: {skipped[0]}' if skipped else ''
            raise PerceptionError(
                f'{args.bag}: no usable camera frame ({len(skipped)} skipped){first}'
            )
    if skipped:
        print(f'skipped {len(skipped)} camera frame(s); first: {skipped[0]}', file=sys.stderr)
    summary = {
        'frames': frames,
        'skipped_frames': len(skipped),
        'mean_people': round(people / max(frames, 1), 2),
        'keypoints_topic': group_topic,
    }
    if split:
        summary.update(facilitator_frames=facilitators, facilitator_topic=fac_topic)
    print(json.dumps(summary))
    print(f'wrote {args.out}')
