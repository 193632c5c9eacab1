"""Perception on meeting-like scenes of real photos: recall, ids over time, ms per frame.

Every person in the scenes is a real photo.

Scenes (perception.meeting): 13 people (photos in test/data and their
mirror images) 35-140 px tall at 1280 x 640, in profile, squeezed as if
turned away, behind a laptop, masked, a hand over the mouth, half hidden by a
neighbour, one straddling the seam, on a cluttered room. Ground truth is
MediaPipe on the clean photo carried through the same crop and placement; a
person counts as found when a detection's nose and shoulders lie within
half their size (shoulder width, or the neck's length for people in
profile) of the truth, one detection per person; unmatched detections are
false positives.

- single_frame: a fresh extractor per scene, one ``process`` call (what
  ``social-pose extract --image`` does); recall by size band and variant,
  precision.
- sequence: 300 consecutive frames (30 Hz stamps) of one meeting (sway, a
  face covered for a while, one person away for a second). Tracking recall
  from the second second on, false positives per frame, id changes per
  person, and the published keypoints' error (mean over the joints the
  truth sees, in person sizes: evaluation.size) of the people found.
- speed: steady state with 4, 8 and 13 people, run live: each call takes
  the newest frame of a 30 Hz stream by the time the last one finished (as
  the node does), so stamps are real time. Median / p90 wall ms and CPU ms
  (this process, all threads) per frame, people tracked of those placed,
  landmark and flow updates per frame, per person the longest time between
  landmark updates (attempts), the staleness of the published keypoints
  (since landmarks or flow measured them) and the oldest landmark result.

The machine's 2 cores may be shared, so timings are noisy:
load_average_1min is the machine's load before and after.
"""

import argparse
import glob
import os
import statistics
import time

from social_pose_diffusion.cli.arguments import integer, integers

SIZE_BANDS = ('<70px', '70-90px', '90-120px', '>=120px')
TOLERANCES = (0.5, 1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default = ' (default: %(default)s)'
    parser.add_argument(
        '--photos', default='test/data/person_*.jpg', help='glob of real person photos' + default
    )
    parser.add_argument(
        '--clutter',
        default='test/data/no_person_*.jpg',
        help='photos without people to dress the table' + default,
    )
    parser.add_argument(
        '--people',
        type=integers(1, 16),
        default='4,8,13',
        help='people counts for the speed runs' + default,
    )
    parser.add_argument(
        '--height',
        type=integer(64, 3840),
        default=640,
        help='panorama height for speed and sequence' + default,
    )
    parser.add_argument(
        '--frames',
        type=integer(1, 100_000),
        default=60,
        help='steady-state frames timed per count' + default,
    )
    parser.add_argument(
        '--scenes',
        type=integer(1, 1000),
        default=6,
        help='single-frame scenes per resolution' + default,
    )
    parser.add_argument(
        '--heights',
        type=integers(64, 3840),
        default='640,960',
        help='panorama heights for single frames' + default,
    )
    parser.add_argument(
        '--sequence-frames',
        type=integer(1, 100_000),
        default=300,
        help='camera frames in the sequence' + default,
    )


def load_photos(pattern):
    """Person photos and their mirror images with MediaPipe's keypoints on each.

    Returns ``[(bgr, (J, 3))]``.
    """
    import cv2

    from social_pose_diffusion.perception.reference import photo_keypoints

    out = []
    for path in sorted(glob.glob(pattern)):
        bgr = cv2.imread(path)
        for image in (bgr, cv2.flip(bgr, 1)):
            truth = photo_keypoints(image)
            if truth is not None:
                out.append((image, truth))
    if not out:
        raise ValueError(f'no photo with a person MediaPipe detects matches {pattern!r}')
    return out


def load_clutter(pattern):
    """The first photo without people matching ``pattern`` (BGR), or None."""
    import cv2

    paths = sorted(glob.glob(pattern))
    return cv2.imread(paths[0]) if paths else None


def _rate(hits, total):
    return round(hits / total, 3) if total else None


def single_frame(photos, clutter, height, scenes):
    """Recall and precision of one ``process`` call per fresh scene.

    Recall overall, by size band and by variant.
    """
    from social_pose_diffusion.perception import make_extractor
    from social_pose_diffusion.perception.meeting import meeting_scene

    extractor = make_extractor('mediapipe')
    results, times = [], []
    for seed in range(scenes):
        pano, people = meeting_scene(photos, 13, height, 100 + seed, clutter)
        extractor.reset()
        start = time.perf_counter()
        frame = extractor.process(pano, 0)
        times.append(1e3 * (time.perf_counter() - start))
        results.append((frame, people))
    report = {
        'height': height,
        'scenes': scenes,
        'placed': 13 * scenes,
        'discovery_ms_median': round(statistics.median(times), 1),
    }
    for tolerance in TOLERANCES:
        report[f'tolerance_{tolerance}'] = _score_frames(results, tolerance)
    return report


def _score_frames(results, tolerance):
    """Recall, precision, recall by size band and by variant of ``[(GroupFrame, [Person])]``."""
    from social_pose_diffusion.perception.evaluation import match
    from social_pose_diffusion.perception.meeting import VARIANTS

    bands, variants = [[0, 0] for _ in SIZE_BANDS], {v: [0, 0] for v in VARIANTS}
    detections = false = 0
    for frame, people in results:
        rows, extra = match(frame, [p.truth for p in people], tolerance)
        detections, false = detections + len(frame), false + len(extra)
        for person, row in zip(people, rows):
            for tally in (bands[person.band()], variants[person.variant]):
                tally[0] += row is not None
                tally[1] += 1
    found = sum(h for h, _ in bands)
    return {
        'found': found,
        'recall': _rate(found, sum(t for _, t in bands)),
        'precision': _rate(detections - false, detections),
        'false_positives': false,
        'recall_by_height_at_640': {b: _rate(*t) for b, t in zip(SIZE_BANDS, bands)},
        'recall_by_variant': {v: _rate(*t) for v, t in variants.items()},
    }


def _run(extractor, render, calls, live, fps=30.0):
    """``calls`` process calls on camera frames ``render(t)`` of a 30 Hz stream.

    ``live``: each call takes the newest camera frame by the time the last
    one finished (slow frames skip camera frames, as the node does), else
    every frame in turn. Returns per call ``(frame index, GroupFrame, wall
    ms, cpu ms, ids whose landmarks ran, the extractor's stats)``.
    """
    out, t, now_s = [], 0, 0.0
    for _ in range(calls):
        pano = render(t)
        stamp = int(t * 1e9 / fps)
        start, start_cpu = time.perf_counter(), time.process_time()
        frame = extractor.process(pano, stamp)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        tried = [i for i, tr in extractor.tracks.tracks.items() if tr.tried_ns == stamp]
        out.append((t, frame, 1e3 * wall, 1e3 * cpu, tried, extractor.stats))
        now_s = max(now_s + wall, (t + 1) / fps) if live else (t + 1) / fps
        t = int(now_s * fps + 1e-9)
    return out


def _update_gaps(runs, fps=30.0):
    """Per person: the longest time between landmark update attempts in ``runs``.

    In ms of camera time.
    """
    last, gaps = {}, {}
    for t, _, _, _, tried, _ in runs:
        for i in tried:
            if i in last:
                gaps[i] = max(gaps.get(i, 0.0), 1e3 * (t - last[i]) / fps)
            last[i] = t
    return gaps


def sequence(photos, clutter, height, frames):
    """A live run over a meeting sequence, scored at each tolerance."""
    from social_pose_diffusion.perception import make_extractor
    from social_pose_diffusion.perception.meeting import MeetingSequence

    seq = MeetingSequence(photos, 13, height, seed=7, clutter=clutter)
    truths = {}

    def render(t):
        pano, truths[t] = seq.frame(t)
        return pano

    runs = _run(make_extractor('mediapipe'), render, frames, live=False)
    walls = [w for t, _, w, _, _, _ in runs if t >= 30]
    report = {
        'height': height,
        'people': len(seq),
        'camera_frames': frames,
        'processed_frames': len(runs),
        'ids_used': len({int(i) for _, frame, _, _, _, _ in runs for i in frame.ids}),
        'ms_median': round(statistics.median(walls), 1) if walls else None,
    }
    for tolerance in TOLERANCES:
        report[f'tolerance_{tolerance}'] = _score_sequence(runs, truths, len(seq), tolerance)
    return report


def _score_sequence(runs, truths, people, tolerance):
    """Tracking recall from the second second on, false positives, id changes.

    False positives per frame, id changes per person.
    """
    import numpy as np

    from social_pose_diffusion.perception.evaluation import match

    last, changes, errors = {}, [0] * people, []
    hits = total = false = late = 0
    for t, frame, _, _, _, _ in runs:
        rows, extra = match(frame, truths[t], tolerance)
        for k, row in enumerate(rows):
            if row is not None:
                changes[k] += k in last and last[k] != int(frame.ids[row])
                last[k] = int(frame.ids[row])
        if t >= 30:
            late += 1
            false += len(extra)
            hits += sum(r is not None for r in rows)
            total += sum(x is not None for x in truths[t])
            errors += [
                _keypoint_error(frame.keypoints[row], truths[t][k])
                for k, row in enumerate(rows)
                if row is not None
            ]
    return {
        'tracking_recall_from_1s': _rate(hits, total),
        'false_positives_per_frame': round(false / max(late, 1), 2),
        'id_changes': sum(changes),
        'id_changes_max_per_person': max(changes),
        'keypoint_error_median': round(float(np.median(errors)), 3) if errors else None,
        'keypoint_error_p90': round(float(np.percentile(errors, 90)), 3) if errors else None,
    }


def _keypoint_error(keypoints, truth):
    """Mean angular error of the joints the truth sees, in person sizes (evaluation.size)."""
    import numpy as np

    from social_pose_diffusion.perception.equirect import angle_between, uv_to_ray
    from social_pose_diffusion.perception.evaluation import size

    seen = truth[:, 2] > 0.5
    errors = angle_between(uv_to_ray(keypoints[seen, :2]), uv_to_ray(truth[seen, :2]))
    return float(np.mean(errors)) / size(truth)


def speed(photos, clutter, count, height, frames):
    """Steady state with ``count`` people: ms per frame, people tracked.

    Also update intervals and staleness.
    """
    import numpy as np

    from social_pose_diffusion.perception import make_extractor
    from social_pose_diffusion.perception.evaluation import match
    from social_pose_diffusion.perception.meeting import meeting_scene

    pano, people = meeting_scene(photos, count, height, seed=count, clutter=clutter)
    extractor = make_extractor('mediapipe')
    start = time.perf_counter()
    extractor.process(pano, 0)
    discovery = 1e3 * (time.perf_counter() - start)
    runs = _run(extractor, lambda t: pano, frames + 1, live=True)[1:]
    walls, cpus = [r[2] for r in runs], [r[3] for r in runs]
    rows, _ = match(runs[-1][1], [p.truth for p in people], TOLERANCES[-1])
    gaps = list(_update_gaps(runs).values())
    staleness = [r[5]['staleness_ms_max'] for r in runs]
    return {
        'people': count,
        'discovery_ms': round(discovery, 1),
        'frames': len(runs),
        'ms_median': round(statistics.median(walls), 1),
        'ms_p90': round(float(np.percentile(walls, 90)), 1),
        'ms_min': round(min(walls), 1),
        'cpu_ms_median': round(statistics.median(cpus), 1),
        'tracked': len(runs[-1][1]),
        'found': sum(r is not None for r in rows),
        'updates_per_frame': round(statistics.mean(len(r[4]) for r in runs), 2),
        'flow_updates_per_frame': round(statistics.mean(r[5]['flowed'] for r in runs), 2),
        'update_interval_ms_max': round(max(gaps), 1) if gaps else None,
        'update_interval_ms_median_of_max': round(statistics.median(gaps), 1) if gaps else None,
        'staleness_ms_max': round(max(staleness), 1),
        'staleness_ms_median_of_frame_max': round(statistics.median(staleness), 1),
        'landmark_age_ms_max': round(max(r[5]['landmark_age_ms_max'] for r in runs), 1),
    }


def run(args: argparse.Namespace) -> dict:
    photos = load_photos(args.photos)
    clutter = load_clutter(args.clutter)
    load_before = os.getloadavg()[0]
    report = {
        'frame': f'{2 * args.height}x{args.height}',
        'photos': len(photos),
        'speed': [speed(photos, clutter, c, args.height, args.frames) for c in args.people],
        'sequence': sequence(photos, clutter, args.height, args.sequence_frames),
        'single_frame': [single_frame(photos, clutter, h, args.scenes) for h in args.heights],
    }
    report['load_average_1min'] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return report
