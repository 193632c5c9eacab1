"""`social-pose demo`: the main job on the bundled defaults."""
import json
from pathlib import Path


def register(sub):
    p = sub.add_parser('demo', help='simulate a short session and show it',
                       description='Simulate a short facilitated discussion, write it as a rosbag2 and show it: '
                                   'a GIF and a contact sheet of skeletons over the 360 frames, and a summary.')
    p.add_argument('--out', type=Path, default=Path('out/demo'), help='output directory (default: %(default)s)')
    p.add_argument('--style', default='music_teacher', help='facilitator style')
    p.add_argument('--seconds', type=float, default=12.0, help='session length')
    p.add_argument('--seed', type=int, default=1, help='random seed (the default session holds an invitation)')
    p.set_defaults(func=run)


def run(args):
    import shutil

    import numpy as np

    from ..atomic import write_json
    from ..bags import iter_images, read_session, topic_counts
    from ..preview import contact_sheet, overlay, save_gif, save_png
    from ..sim import simulate, write_session_bag

    args.out.mkdir(parents=True, exist_ok=True)
    bag = args.out / 'session'
    if bag.exists():
        shutil.rmtree(bag)
    write_session_bag(simulate(args.style, 4, args.seconds, 30.0, args.seed), bag)
    session = read_session(bag)
    every = 6  # 5 Hz preview
    frames = [overlay(bgr, session.participants[t], session.facilitator[t])
              for t, (_, bgr) in enumerate(iter_images(bag)) if t % every == 0]
    save_gif(frames, args.out / 'session.gif', fps=30.0 / every)
    save_png(contact_sheet(frames[::max(1, len(frames) // 6)][:6], width=1440), args.out / 'session.png')
    summary = {
        'bag': str(bag), 'style': args.style, 'frames': len(session), 'fps': session.fps,
        'participants': len(session.participant_ids),
        'topics': {t: {'type': m, 'count': c} for t, (m, c) in sorted(topic_counts(bag).items())},
        'speaking_share': {int(p): round(float(np.mean(session.speaker == i)), 3)
                           for i, p in enumerate(session.participant_ids)},
        'invitations': int(np.sum((session.invite >= 0) & (np.r_[-1, session.invite[:-1]] < 0))),
        'pictures': [str(args.out / 'session.gif'), str(args.out / 'session.png')],
    }
    write_json(args.out / 'summary.json', summary)
    print(json.dumps(summary, indent=2))
