"""End-to-end speed of the node graph: image to facilitator pose, and the control-loop rate.

Latency runs from a camera frame published to the facilitator pose received.

The nodes run as separate processes (social_pose_diffusion.graph: the launch
files' executables and config/facilitator.yaml) on real DDS. This process acts
as the camera driver: --people people visible (the facilitator among them,
split off by seat) at --width x width/2, published at --fps as raw
sensor_msgs/Image (or CompressedImage) stamped with the wall clock. With
--scene composite (default) every person is a real photo
(perception.meeting: 35-140 px tall at 1280 x 640, some occluded, in
profile, one across the seam, swaying), so MediaPipe tracks them all and
the perception cost is that of N real people; --scene rendered draws the
simulator's articulated people (which MediaPipe mostly does not see). The
report says how many people the keypoints node tracked. A ping-pong clip
of --clip-frames distinct frames keeps the motion continuous without
holding minutes of raw frames in memory.

Rows, side by side: the default model; the paper's configuration (plotted
keypoint observation, DDPM sampled with Diffusion-X T=50 + M=8, same network
size, untrained weights: speed only, its poses mean nothing); and the default
model fed the true keypoints through the external-detector input (the graph
without perception). Per row: achieved control rate, end-to-end latency
(mean/p95/max over frames that reached a pose), frames the keypoints node
dropped while busy, and the nodes' own diagnostics (perception time, policy
latency). The machine's 2 cores may be shared with other work: numbers are noisy.
"""

import argparse
import json
import tempfile
from pathlib import Path

from social_pose_diffusion.cli.arguments import integer, number

TARGET_CONTROL_HZ = 30.0
TARGET_LATENCY_P95_MS = 150.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--seconds',
        type=number(1.0, 3600.0),
        default=20.0,
        help='camera stream per row (default: %(default)s)',
    )
    parser.add_argument(
        '--people',
        type=integer(),
        default=4,
        help='people in the frame incl. the facilitator: 2..16 composite, 4..7 rendered '
        '(default: %(default)s)',
    )
    parser.add_argument(
        '--scene',
        choices=('composite', 'rendered'),
        default='composite',
        help='camera stream: real photos composited, or the simulator drawn '
        '(default: %(default)s)',
    )
    parser.add_argument(
        '--photos',
        default='test/data/person_*.jpg',
        help='with --scene composite: glob of real person photos (default: %(default)s)',
    )
    parser.add_argument(
        '--clutter',
        default='test/data/no_person_*.jpg',
        help='with --scene composite: photos without people for the table (default: %(default)s)',
    )
    parser.add_argument(
        '--width',
        type=integer(64, 7680),
        default=1920,
        help='frame width; height is width/2 (default: %(default)s)',
    )
    parser.add_argument(
        '--fps', type=number(1.0, 240.0), default=30.0, help='camera rate (default: %(default)s)'
    )
    parser.add_argument(
        '--transport',
        choices=('raw', 'compressed'),
        default='raw',
        help='camera messages: raw bgr8 Image or jpeg CompressedImage (default: %(default)s)',
    )
    parser.add_argument(
        '--clip-frames',
        type=integer(1, 10_000),
        default=60,
        help='distinct frames in the clip (default: %(default)s)',
    )
    parser.add_argument(
        '--rows',
        default='default,paper,keypoints',
        help='comma list of default, paper, keypoints (default: %(default)s)',
    )
    parser.add_argument(
        '--paper-model',
        default=None,
        help="a trained model of the paper's configuration; default: untrained weights made here",
    )


def _paper_model(directory, default_model):
    """An untrained model of the paper's configuration (timing only).

    It has the default model's body.
    """
    from social_pose_diffusion.policy import Policy, PolicyConfig, model_paths

    default = json.loads(model_paths(default_model)[1].read_text())
    config = PolicyConfig(
        encoder='plotted',
        policy='diffusion',
        sampler='diffusion_x',
        timesteps=50,
        extra_steps=8,
        d_model=default['d_model'],
        layers=default['layers'],
        heads=default['heads'],
        neutral_pose=default['neutral_pose'],
        max_speed=default['max_speed'],
    )
    path = Path(directory) / 'models' / 'paper.safetensors'
    path.parent.mkdir(parents=True, exist_ok=True)
    Policy(config).save(path)
    return path.with_suffix('')


def _stage(report, node, key):
    value = report.get('diagnostics', {}).get(node, {}).get(key)
    return float(value) if value is not None else None


def _rendered(args, clip):
    """The simulator's discussion drawn.

    Frames, participants' (ids, keypoints) per frame, facilitator seat u.
    """
    from social_pose_diffusion.sources.sim import Renderer, simulate

    session = simulate('music_teacher', args.people - 1, clip / args.fps + 1.0, args.fps, seed=0)
    renderer = Renderer(session, args.width, args.width // 2, seed=0)
    frames = [renderer.frame(t) for t in range(clip)]
    participants = [(session.participant_ids, session.participants[t]) for t in range(clip)]
    return frames, participants, float(session.info['facilitator_seat_u'])


def _composite(args, clip):
    """A meeting of real photos (perception.meeting); the first person is the facilitator."""
    import numpy as np

    from social_pose_diffusion.bench.perception import load_clutter, load_photos
    from social_pose_diffusion.perception.meeting import MeetingSequence

    seq = MeetingSequence(
        load_photos(args.photos),
        args.people,
        args.width // 2,
        seed=0,
        clutter=load_clutter(args.clutter),
        fps=args.fps,
        away=(0.0, 0.0),
        covered=(0.0, 0.0),
    )
    frames, participants = [], []
    ids = np.arange(1, args.people, dtype=np.int32)
    for t in range(clip):
        pano, truths = seq.frame(t)
        frames.append(pano)
        participants.append((ids, np.stack(truths[1:]).astype(np.float32)))
    return frames, participants, float(seq.people[0].u)


def _tracked(report):
    """People the keypoints node published in its last frame.

    Plus the facilitator, split off by seat.
    """
    value = report.get('diagnostics', {}).get('/keypoints_node', {}).get('people (last frame)')
    return None if value is None else int(float(value)) + 1


def run(args: argparse.Namespace) -> dict:
    from social_pose_diffusion.core.frames import GroupFrame
    from social_pose_diffusion.core.resources import config_path, default_model
    from social_pose_diffusion.evaluation.live import score
    from social_pose_diffusion.msgs.images import bgr_to_compressed, bgr_to_image
    from social_pose_diffusion.msgs.keypoint_cloud import frame_to_cloud
    from social_pose_diffusion.ros.messages import RCLPY
    from social_pose_diffusion.ros.replay import play, running_graph

    low, high = (2, 16) if args.scene == 'composite' else (4, 7)
    if not low <= args.people <= high:
        raise ValueError(
            f'--people counts the facilitator too: {low}..{high} with --scene {args.scene}'
        )
    rows = [r.strip() for r in args.rows.split(',') if r.strip()]
    unknown = set(rows) - {'default', 'paper', 'keypoints'}
    if unknown:
        raise ValueError(f'unknown rows {sorted(unknown)}')
    clip = max(2, args.clip_frames)
    frames, participants, seat = (_composite if args.scene == 'composite' else _rendered)(
        args, clip
    )
    order = list(range(clip)) + list(range(clip - 2, 0, -1))
    if args.transport == 'raw':
        messages = [bgr_to_image(f, RCLPY.header(0), RCLPY) for f in frames]
    else:
        messages = [bgr_to_compressed(f, RCLPY.header(0), RCLPY) for f in frames]
    clouds = [
        frame_to_cloud(GroupFrame(0, *participants[t]), RCLPY.header(0), RCLPY)
        for t in range(clip)
    ]
    count = int(args.seconds * args.fps)
    results = {}
    with tempfile.TemporaryDirectory(prefix='social-pose-bench-') as tmp:
        models = {
            'default': default_model(),
            'keypoints': default_model(),
            'paper': Path(args.paper_model) if args.paper_model else None,
        }
        if 'paper' in rows and models['paper'] is None:
            models['paper'] = _paper_model(tmp, default_model())
        for row in rows:
            kind = 'keypoints' if row == 'keypoints' else args.transport
            source = clouds if row == 'keypoints' else messages
            items = [
                (int(k * 1e9 / args.fps), source[order[k % len(order)]]) for k in range(count)
            ]
            overrides = {
                'policy_node': {'model_path': str(models[row])},
                'keypoints_node': (
                    {'input': 'keypoints'}
                    if row == 'keypoints'
                    else {'image_transport': args.transport, 'facilitator_seat_u': seat}
                ),
            }
            with running_graph(
                kind,
                overrides,
                [config_path('facilitator.yaml')],
                live=True,
                log_dir=Path(tmp) / 'logs' / row,
            ) as (node, graph, ready_s):
                sent = play(node, items, kind, 1.0, drain_s=2.5)
                graph.check()
                with node._lock:
                    received = list(node.received)
            report = score(received, sent, None)
            results[row] = {
                'input': kind,
                'model': str(models[row])
                if row != 'paper' or args.paper_model
                else 'untrained, paper configuration (speed only)',
                'graph_ready_s': round(ready_s, 1),
                'control_rate_hz': report.get('output_rate_hz'),
                'control_interval_ms': report.get('control_interval_ms'),
                'latency_ms': report.get('latency_ms'),
                'frames_published': report['frames_published'],
                'frames_reaching_a_pose': report['frames_reaching_a_pose'],
                'dropped_frames': report['dropped_frames'],
                'people_tracked': _tracked(report) if row != 'keypoints' else None,
                'perception_ms': {
                    'median': _stage(report, '/keypoints_node', 'processing time median (ms)'),
                    'mean': _stage(report, '/keypoints_node', 'processing time mean (ms)'),
                    'p95': _stage(report, '/keypoints_node', 'processing time p95 (ms)'),
                },
                'policy_latency_ms': {
                    'mean': _stage(report, '/policy_node', 'policy latency mean (ms)'),
                    'p95': _stage(report, '/policy_node', 'policy latency p95 (ms)'),
                },
                'diagnostics': report.get('diagnostics', {}),
            }
            p95 = (report.get('latency_ms') or {}).get('p95_ms')
            rate = report.get('output_rate_hz') or 0.0
            results[row]['meets'] = {
                'control_rate_30hz': bool(rate >= 0.95 * TARGET_CONTROL_HZ),
                'latency_p95_150ms': bool(p95 is not None and p95 <= TARGET_LATENCY_P95_MS),
            }
    return {
        'benchmark': 'pipeline',
        'setup': {
            'people_in_frame': args.people,
            'scene': args.scene,
            'frame': f'{args.width}x{args.width // 2}',
            'fps': args.fps,
            'transport': args.transport,
            'seconds_per_row': args.seconds,
            'clip_frames': clip,
            'latency': 'image published (wall-clock stamp) -> first /facilitator/pose planned '
            'from it '
            'received (obs_age field), same host',
            'targets': {
                'control_rate_hz': TARGET_CONTROL_HZ,
                'latency_p95_ms': TARGET_LATENCY_P95_MS,
            },
        },
        'rows': results,
    }
