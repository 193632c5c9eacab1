"""Perception speed (discovery and steady-state tracking at 1, 4, 8 people) and recall on 13-person composites.

Scenes are real photos (test/data/person_*.jpg and their mirror images)
pasted into an equirectangular canvas at known azimuths. Discovery = the
first frame (detector over the ring of views, landmark passes for each new
person); steady = later frames with the defaults (one landmark pass per
tracked person plus the rolling re-scan, 18 views per 30 frames); tracking_only = the
same with re-scans off. Recall = share of placed people whose nose and
shoulders come out within half a shoulder width of MediaPipe run directly on
the unwarped photo, on the first frame and 5 tracked frames later.

The machine's 2 cores may be shared, so numbers are noisy: min is the least
disturbed frame, cpu_median this process's CPU time over all threads (above
the wall time when the landmark workers run in parallel), load_average_1min
the machine's load before and after.
"""
import glob
import os
import statistics
import time


def add_arguments(parser):
    default = ' (default: %(default)s)'
    parser.add_argument('--photos', default='test/data/person_*.jpg', help='glob of real person photos' + default)
    parser.add_argument('--people', default='1,4,8', help='people counts for the speed runs' + default)
    parser.add_argument('--height', type=int, default=960, help='panorama height for the speed runs' + default)
    parser.add_argument('--frames', type=int, default=20, help='steady-state frames timed per count' + default)
    parser.add_argument('--recall-people', type=int, default=13, help='people per recall scene' + default)
    parser.add_argument('--recall-scenes', type=int, default=4, help='recall scenes per resolution' + default)


def load_photos(pattern):
    """Person photos and their mirror images with MediaPipe's keypoints on each: ``[(bgr, (J, 3))]``."""
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


def truths(photos, placed):
    """Equirect (u, v, visibility) ground truth of every placed photo."""
    import numpy as np
    from social_pose_diffusion.perception.composite import photo_to_uv
    return [np.concatenate([photo_to_uv(view, photos[i][0].shape, photos[i][1][:, :2]), photos[i][1][:, 2:]], axis=1)
            for i, view in placed]


def _timed(extractor, pano, stamps):
    """Wall and CPU (this process, all threads) milliseconds per ``process`` call, and the last frame."""
    wall, cpu = [], []
    for stamp in stamps:
        start, start_cpu = time.perf_counter(), time.process_time()
        frame = extractor.process(pano, stamp)
        wall.append(1e3 * (time.perf_counter() - start))
        cpu.append(1e3 * (time.process_time() - start_cpu))
    return wall, cpu, frame


def speed(photos, count, height, frames):
    """Discovery (first frame), steady state with the rolling re-scan (defaults), and tracking alone."""
    from social_pose_diffusion.perception import make_extractor
    from social_pose_diffusion.perception.composite import ring_scene
    from social_pose_diffusion.perception.evaluation import found
    pano, placed = ring_scene([p[0] for p in photos], count, height, seed=count)
    stamps = [k * 33_000_000 for k in range(frames + 1)]
    report = {'people': count}
    for name, period in (('steady', 30), ('tracking_only', 0)):
        extractor = make_extractor('mediapipe', discovery_period=period)
        times, cpu, frame = _timed(extractor, pano, stamps)
        report['discovery_ms'] = round(times[0], 1)
        for stat, value in (('min', min(times[1:])), ('median', statistics.median(times[1:])),
                            ('max', max(times[1:])), ('cpu_median', statistics.median(cpu[1:]))):
            report[f'{name}_ms_{stat}'] = round(value, 1)
    report.update(tracked=len(frame), found=sum(found(frame, t) for t in truths(photos, placed)),
                  tracking_ms_per_person=round(report['tracking_only_ms_median'] / max(len(frame), 1), 1))
    return report


def recall(photos, count, height, scenes, later=5):
    """Share of placed people found on the first frame and, tracked, ``later`` frames on."""
    from social_pose_diffusion.perception import make_extractor
    from social_pose_diffusion.perception.composite import ring_scene
    from social_pose_diffusion.perception.evaluation import found
    first = tracked = total = 0
    times = []
    for seed in range(scenes):
        pano, placed = ring_scene([p[0] for p in photos], count, height, seed=100 + seed)
        extractor = make_extractor('mediapipe')
        start = time.perf_counter()
        frame = extractor.process(pano, 0)
        times.append(1e3 * (time.perf_counter() - start))
        people = truths(photos, placed)
        first += sum(found(frame, t) for t in people)
        for k in range(1, later + 1):
            frame = extractor.process(pano, k * 33_000_000)
        tracked += sum(found(frame, t) for t in people)
        total += count
    return {'height': height, 'people_per_scene': count, 'scenes': scenes, 'placed': total,
            'found_first_frame': first, 'recall_first_frame': round(first / total, 3),
            f'found_frame_{later}': tracked, f'recall_frame_{later}': round(tracked / total, 3),
            'discovery_ms_median': round(statistics.median(times), 1)}


def run(args):
    photos = load_photos(args.photos)
    counts = [int(c) for c in args.people.split(',')]
    load_before = os.getloadavg()[0]
    report = {'frame': f'{2 * args.height}x{args.height}', 'photos': len(photos),
              'speed': [speed(photos, c, args.height, args.frames) for c in counts],
              'recall': [recall(photos, args.recall_people, h, args.recall_scenes) for h in (640, 960)]}
    report['load_average_1min'] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return report
