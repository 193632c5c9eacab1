"""Soak test of the node graph: 10k frames at 30 Hz, memory and latency over time.

Not a unit test. Run as:

    export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=57
    social-pose benchmark soak --frames 10000

The graph runs as separate processes (social_pose_diffusion.ros.launcher, config/facilitator.yaml).
By default the input is a looping simulated session's keypoints on the external-detector topic
(perception would make the run CPU-bound on 2 cores); ``--input raw`` publishes 960x480 camera
frames instead. The session loops (people jump back to their poses of the loop's start). Every
``--window`` frames the report holds each node's resident memory (from /proc) and the latency of
that window, so a leak or a growing queue shows as a trend.
"""

import argparse
import json
import time
from pathlib import Path

from social_pose_diffusion.cli.arguments import integer, number


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (Linux), or None."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--frames',
        type=integer(1, 10_000_000),
        default=10000,
        help='frames in all (default: %(default)s)',
    )
    parser.add_argument(
        '--window',
        type=integer(1, 10_000_000),
        default=1000,
        help='frames per reported window (default: %(default)s)',
    )
    parser.add_argument('--input', choices=('keypoints', 'raw'), default='keypoints')
    parser.add_argument(
        '--loop-seconds',
        type=number(2.0, 3600.0),
        default=30.0,
        help='length of the looping session',
    )


def run(args: argparse.Namespace) -> dict:
    from social_pose_diffusion.core.frames import GroupFrame
    from social_pose_diffusion.core.resources import config_path
    from social_pose_diffusion.evaluation.live import score
    from social_pose_diffusion.msgs.images import bgr_to_image
    from social_pose_diffusion.msgs.keypoint_cloud import frame_to_cloud
    from social_pose_diffusion.ros.messages import RCLPY
    from social_pose_diffusion.ros.replay import play, running_graph
    from social_pose_diffusion.sources.sim import Renderer, simulate

    session = simulate('music_teacher', 4, args.loop_seconds, 30.0, seed=3)
    n = len(session)
    if args.input == 'keypoints':
        loop = [
            frame_to_cloud(
                GroupFrame(0, session.participant_ids, session.participants[t]),
                RCLPY.header(0),
                RCLPY,
            )
            for t in range(n)
        ]
        overrides = {'keypoints_node': {'input': 'keypoints'}}
    else:
        renderer = Renderer(session, 960, 480, seed=3)
        loop = [
            bgr_to_image(renderer.frame(t), RCLPY.header(0), RCLPY) for t in range(min(n, 150))
        ]
        overrides = {
            'keypoints_node': {'facilitator_seat_u': float(session.info['facilitator_seat_u'])}
        }
    windows = []
    start = time.monotonic()
    with running_graph(args.input, overrides, [config_path('facilitator.yaml')], live=True) as (
        node,
        graph,
        _,
    ):
        pids = {name: proc.pid for name, proc in graph.procs.items()}
        done = 0
        while done < args.frames:
            count = min(args.window, args.frames - done)
            # Frames go out at 30 Hz stamped with the wall clock; the session itself loops.
            items = [
                (int((done + k) * 1e9 / 30.0), loop[(done + k) % len(loop)]) for k in range(count)
            ]
            with node._lock:
                node.received.clear()
            sent = play(node, items, args.input, 1.0, drain_s=0.5)
            with node._lock:
                received = list(node.received)
            graph.check()
            report = score(received, sent, None)
            done += count
            windows.append(
                {
                    'frames_done': done,
                    'elapsed_s': round(time.monotonic() - start, 1),
                    'rss_mb': {name: rss_mb(pid) for name, pid in pids.items()},
                    'latency_ms': report.get('latency_ms'),
                    'output_rate_hz': report.get('output_rate_hz'),
                    'dropped_frames': report['dropped_frames'],
                    'policy': report.get('diagnostics', {}).get('/policy_node', {}),
                }
            )
            print(json.dumps(windows[-1]), flush=True)
    first, last = windows[0], windows[-1]
    summary = {
        'benchmark': 'soak',
        'frames': args.frames,
        'input': args.input,
        'windows': windows,
        'rss_growth_mb': {
            k: (last['rss_mb'][k] or 0) - (first['rss_mb'][k] or 0) for k in first['rss_mb']
        },
        'latency_p95_first_last_ms': [
            (first['latency_ms'] or {}).get('p95_ms'),
            (last['latency_ms'] or {}).get('p95_ms'),
        ],
    }
    return summary
