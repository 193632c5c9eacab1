"""`social-pose demo`: the main job on the bundled defaults."""

import json
from pathlib import Path

from social_pose_diffusion.cli.arguments import integer, number, output_path, session_length
from social_pose_diffusion.cli.simulate import STYLE_NAMES

PREVIEW_EVERY = 6  # frames: the GIFs and contact sheets show the 30 Hz session at 5 Hz


def register(sub):
    p = sub.add_parser(
        'demo',
        help='simulate a short session, run the node graph on it and show both',
        description='Simulate a short facilitated discussion, write it as a rosbag2 and show it: '
        'a GIF and a contact sheet of skeletons over the 360 frames, and a summary. '
        'Then start the ROS 2 nodes (the executables and parameter files the launch '
        'files use) as separate processes, replay the session onto the camera topic '
        'through real DDS at 1x with simulated time, record what the graph publishes '
        '(graph_outputs/), and end with the replay evaluation (replay.json) and a '
        'GIF/PNG of generated vs true facilitator skeletons (graph.gif, graph.png).',
    )
    p.add_argument(
        '--out',
        type=output_path,
        default=Path('out/demo'),
        help='output directory (default: %(default)s)',
    )
    p.add_argument(
        '--style', choices=STYLE_NAMES, default='music_teacher', help='facilitator style'
    )
    p.add_argument(
        '--seconds',
        type=number(positive=True),
        default=12.0,
        help='session length (default: %(default)s)',
    )
    p.add_argument(
        '--seed',
        type=integer(0),
        default=1,
        help='random seed (the default session holds an invitation)',
    )
    p.add_argument(
        '--no-graph',
        action='store_true',
        help='only simulate and show the session; skip running the node graph on it',
    )
    p.add_argument(
        '--input',
        choices=('image', 'keypoints'),
        default='image',
        help='graph input: the camera stream through perception, or the true keypoints '
        '(the external-detector input) (default: %(default)s)',
    )
    p.add_argument(
        '--model', default=None, help='policy model for the graph (default: the packaged one)'
    )
    p.set_defaults(func=run)


def run(args):
    import shutil

    import numpy as np

    from social_pose_diffusion.core.atomic import write_json
    from social_pose_diffusion.sources.bags import iter_images, read_session, topic_counts
    from social_pose_diffusion.sources.sim import simulate, write_session_bag
    from social_pose_diffusion.viz.preview import overlay

    session_length(args.seconds, 30.0)
    if not args.no_graph:
        from social_pose_diffusion.ros.replay import check_model

        check_model(args.model)  # before the session is written
    args.out.mkdir(parents=True, exist_ok=True)
    bag = args.out / 'session'
    if bag.exists():
        shutil.rmtree(bag)
    write_session_bag(simulate(args.style, 4, args.seconds, 30.0, args.seed), bag)
    session = read_session(bag)
    shown = [
        (t, stamp, bgr)
        for t, (stamp, bgr) in enumerate(iter_images(bag))
        if t % PREVIEW_EVERY == 0
    ]
    save_preview(
        [overlay(bgr, session.participants[t], session.facilitator[t]) for t, _, bgr in shown],
        args.out / 'session',
    )
    summary = {
        'bag': str(bag),
        'style': args.style,
        'frames': len(session),
        'fps': session.fps,
        'participants': len(session.participant_ids),
        'topics': {t: {'type': m, 'count': c} for t, (m, c) in sorted(topic_counts(bag).items())},
        'speaking_share': {
            int(p): round(float(np.mean(session.speaker == i)), 3)
            for i, p in enumerate(session.participant_ids)
        },
        'invitations': len(session.invitation_onsets()),
        'pictures': [str(args.out / 'session.gif'), str(args.out / 'session.png')],
    }
    if not args.no_graph:
        summary['graph'] = run_graph(args, bag, session, shown)
    write_json(args.out / 'summary.json', summary)
    print(json.dumps(summary, indent=2))


def save_preview(frames, stem):
    """``stem``.gif of the preview frames and ``stem``.png, a contact sheet of six of them."""
    from social_pose_diffusion.viz.preview import contact_sheet, save_gif, save_png

    save_gif(frames, stem.with_suffix('.gif'), fps=30.0 / PREVIEW_EVERY)
    save_png(
        contact_sheet(frames[:: max(1, len(frames) // 6)][:6], width=1440),
        stem.with_suffix('.png'),
    )


def run_graph(args, bag, session, shown):
    """Replay the session into the node graph (separate processes, real DDS), score it, picture it.

    ``shown`` holds the preview frames ``(t, stamp, bgr)`` of the session bag.
    """
    import numpy as np

    from social_pose_diffusion.core.atomic import write_json
    from social_pose_diffusion.evaluation.live import nearest, recorded_groups, recorded_poses
    from social_pose_diffusion.ros.replay import replay
    from social_pose_diffusion.viz.preview import overlay

    out_bag = args.out / 'graph_outputs'
    report = replay(
        bag, out=out_bag, input_kind=args.input, model=args.model, log_dir=args.out / 'logs'
    )
    write_json(args.out / 'replay.json', report)
    stamps, poses = recorded_poses(out_bag)
    groups = recorded_groups(out_bag)
    group_stamps = np.array(sorted(groups), np.int64)
    half_frame = int(0.5e9 / session.fps)
    frames = []
    for t, stamp, bgr in shown:
        k = nearest(stamps, stamp, half_frame)
        g = nearest(group_stamps, stamp, int(1e9))  # the newest perception near this frame
        group = groups[int(group_stamps[g])] if g is not None else ()
        frames.append(
            overlay(bgr, group, session.facilitator[t], poses[k] if k is not None else None)
        )
    save_preview(frames, args.out / 'graph')
    keys = (
        'mode',
        'input',
        'frames_published',
        'poses_received',
        'dropped_frames',
        'latency_ms',
        'output_rate_hz',
        'mpjpe',
        'mpjpe_hold_first_true_pose',
        'nodes_alive',
    )
    return {
        **{k: report[k] for k in keys if k in report},
        'report': str(args.out / 'replay.json'),
        'output_bag': str(out_bag),
        'pictures': [str(args.out / 'graph.gif'), str(args.out / 'graph.png')],
        'legend': (
            'green: group as perceived by the graph, red: true facilitator, '
            'blue: generated facilitator'
        ),
    }
