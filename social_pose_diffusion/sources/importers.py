"""Other tools' 2D keypoint tracks as session bags: COCO-style JSON and plain per-frame tables.

Both readers give :class:`Detections` (one row per person, frame and source
joint, pixels); :func:`to_frames` maps the joints onto ours, projects the
pixels of an equirectangular or a cylindrical (stitched) panorama to (u, v)
and splits off the facilitator; :func:`write_bag` writes the session bag with
``/session/info``. Every point that is not imported is counted with its
reason, never silently dropped; joints the source lacks are confidence 0.
"""

import csv
import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from social_pose_diffusion.core.frames import GroupFrame, single_person
from social_pose_diffusion.core.skeleton import JOINT, JOINT_NAMES, NUM_JOINTS

# COCO's 17 keypoints: the project's 13 joints in the same order, then knees and ankles.
COCO_JOINTS = JOINT_NAMES + ('left_knee', 'right_knee', 'left_ankle', 'right_ankle')
# Layouts that start with COCO's 17 and add joints we do not use, by their joint count.
COCO_EXTENDED = {26: 'halpe26', 133: 'coco_wholebody', 136: 'halpe136'}
# Where trackers put an annotation's track id: COCO/PoseTrack, AlphaPose (--pose_track).
TRACK_KEYS = ('track_id', 'idx')
PROJECTIONS = ('equirect', 'cylindrical')
MAX_FRAME = 2**31 - 1  # image ids read as frame numbers
MAX_STAMP_S = 2**31 - 1  # builtin_interfaces/Time holds int32 seconds
TABLE_COLUMNS = {
    'stamp': ('stamp', 'time', 'timestamp'),
    'frame': ('frame', 'frame_id', 'frame_index'),
    'track': ('track', 'track_id', 'id'),
    'joint': ('joint', 'keypoint'),
    'x': ('x',),
    'y': ('y',),
    'conf': ('conf', 'confidence', 'score'),
}


@dataclass
class Detections:
    """Detections as flat rows.

    Columns: ``frame`` index, ``track`` id, source ``joint`` name index, pixel
    ``x``, ``y``, ``conf``.

    ``joints`` names the source joints; ``stamps_s`` (per frame index, or
    None) the recorded times; ``size`` the image (width, height) if known.
    ``tracked`` False: ``track`` numbers detections, not people
    (:func:`to_frames` tracks them).
    """

    frame: np.ndarray
    track: np.ndarray
    joint: np.ndarray
    x: np.ndarray
    y: np.ndarray
    conf: np.ndarray
    joints: tuple
    stamps_s: dict | None = None
    size: tuple | None = None
    tracked: bool = True


@dataclass
class Projection:
    """Pixels of a 360-degree panorama to normalised (u, v).

    Equirectangular, or cylindrical with a vertical FOV.
    """

    kind: str
    width: int
    height: int
    vfov_deg: float = 0.0

    def __post_init__(self):
        if self.kind not in PROJECTIONS:
            raise ValueError(f'projection must be one of {PROJECTIONS}, not {self.kind!r}')
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f'image size must be positive, not {self.width}x{self.height}')
        if self.kind == 'cylindrical' and not 0.0 < self.vfov_deg < 180.0:
            raise ValueError(
                f'a cylindrical panorama needs its vertical field of view in (0, '
                f'180) degrees, '
                f'not {self.vfov_deg}'
            )

    def to_uv(self, x, y):
        """(u, v) arrays and a mask of the points inside the image rows.

        x wraps: the panorama is 360 degrees.
        """
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        inside = (y >= 0) & (y <= self.height)
        with np.errstate(invalid='ignore'):  # non-finite points are the caller's to count
            u = (x / self.width) % 1.0
        if self.kind == 'equirect':
            v = y / self.height
        else:  # y = h/2 - f tan(elevation), f from the vertical field of view
            f = 0.5 * self.height / np.tan(np.radians(self.vfov_deg) / 2)
            v = 0.5 - np.arctan2(0.5 * self.height - y, f) / np.pi
        return u, v, inside


def joint_map(names: Iterable[str]) -> np.ndarray:
    """Our joint index per source joint name.

    -1: not one of ours, e.g. knees or a centre-shoulder joint.
    """
    return np.array([JOINT.get(str(n).strip().lower(), -1) for n in names], np.int64)


def _confidence(values):
    """COCO visibility flags (0, 1, 2) as confidence 0, 0.5, 1.

    Detector scores are clipped to [0, 1].
    """
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    if len(finite) and np.isin(finite, (0.0, 1.0, 2.0)).all() and (finite == 2.0).any():
        return values / 2.0
    return np.clip(values, 0.0, 1.0)


def read_coco(path, joints=None):
    """:class:`Detections` of a COCO/PoseTrack/AlphaPose-style keypoint JSON.

    Accepts ``{"images", "annotations", "categories"}`` (``image.frame_id`` or
    ``frame_index`` orders frames, else ``image.id``; ``image.timestamp`` in
    seconds gives stamps) or a plain list of annotations whose ``image_id``
    is the frame index or an image name with it (``frame_000012.jpg``: the
    last number). Track ids are ``track_id`` or AlphaPose's ``idx``; with none
    at all the detections are untracked. ``joints`` (source order) overrides
    the category's keypoint names, else the 17 COCO joints (or a layout that
    starts with them, :data:`COCO_EXTENDED`).
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f'{path}: not readable JSON: {exc}') from exc
    images, stamps, size = {}, {}, None
    if isinstance(data, dict):
        annotations = data.get('annotations')
        cats = data.get('categories') or [{}]
        joints = joints or cats[0].get('keypoints')
        for img in data.get('images', []):
            index = img.get('frame_id', img.get('frame_index', img.get('id')))
            images[img['id']] = int(index)
            if 'timestamp' in img:
                stamps[int(index)] = float(img['timestamp'])
            if 'width' in img and 'height' in img:
                size = (int(img['width']), int(img['height']))
    else:
        annotations = data
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        raise ValueError(f'{path}: expected a list of annotations or a dict with "annotations"')
    if not annotations:
        raise ValueError(f'{path}: no annotations')
    joints = tuple(joints or _default_joints(annotations[0]))
    key = next((k for k in TRACK_KEYS if any(k in a for a in annotations)), None)
    if key is not None and not all(key in a for a in annotations):
        n = next(n for n, a in enumerate(annotations) if key not in a)
        raise ValueError(f'{path}: annotation {n} has no {key} while others have one')
    names = [ann.get('image_id') for ann in annotations]
    if any(name is None for name in names):
        raise ValueError(f'{path}: annotation {names.index(None)} has no image_id')
    frames = _frame_numbers([images.get(name, name) for name in names] if images else names, path)
    rows = []
    for n, ann in enumerate(annotations):
        try:
            kp = np.asarray(ann.get('keypoints', ()), np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(
                f'{path}: annotation {n} has keypoints that are not numbers'
            ) from None
        if len(kp) != 3 * len(joints):
            raise ValueError(
                f'{path}: annotation {n} has {len(kp)} keypoint values, expected 3 x '
                f'{len(joints)} joints ({", ".join(joints[:17])}'
                f'{", ..." if len(joints) > 17 else ""}); give the joint order'
            )
        try:
            track = n if key is None else int(ann[key])
        except (TypeError, ValueError):
            raise ValueError(f'{path}: annotation {n} has a non-integer {key}') from None
        kp = kp.reshape(-1, 3)
        rows.append(
            np.column_stack(
                [np.full(len(kp), frames[n]), np.full(len(kp), track), np.arange(len(kp)), kp]
            )
        )
    r = np.concatenate(rows)
    return Detections(
        r[:, 0].astype(np.int64),
        r[:, 1].astype(np.int64),
        r[:, 2].astype(np.int64),
        r[:, 3],
        r[:, 4],
        _confidence(r[:, 5]),
        joints,
        stamps or None,
        size,
        tracked=key is not None,
    )


def _default_joints(annotation):
    """The 17 COCO joints, or a layout starting with them, from one annotation's value count."""
    try:
        count = len(np.ravel(annotation.get('keypoints', ()))) // 3
    except ValueError:  # ragged: the reader names the annotation
        return COCO_JOINTS
    if count in COCO_EXTENDED:
        return COCO_JOINTS + tuple(f'{COCO_EXTENDED[count]}_{i}' for i in range(17, count))
    return COCO_JOINTS


def _frame_numbers(ids, path):
    """Frame index per annotation from image ids: integers, or names holding one (the last)."""
    out = []
    for image in ids:
        if isinstance(image, (int, float, np.number)) and not isinstance(image, bool):
            if float(image).is_integer():
                out.append(int(image))
                continue
        found = re.findall(r'\d+', image) if isinstance(image, str) else []
        if not found:
            raise ValueError(
                f'{path}: image_id {image!r} is neither a frame number nor a name with one '
                '(e.g. frame_000012.jpg)'
            )
        out.append(int(found[-1]))
    if out and max(out) > MAX_FRAME:
        raise ValueError(f'{path}: frame number {max(out)} is beyond {MAX_FRAME}')
    return np.asarray(out, np.int64)


def _table_columns(names, path):
    """Which given column holds each field (stamp or frame, track, joint, x, y, conf)."""
    lower = {str(n).strip().lower(): n for n in names}
    found = {
        key: next((lower[a] for a in aliases if a in lower), None)
        for key, aliases in TABLE_COLUMNS.items()
    }
    missing = [k for k in ('track', 'joint', 'x', 'y', 'conf') if found[k] is None]
    if found['stamp'] is None and found['frame'] is None:
        missing.insert(0, 'stamp or frame')
    if missing:
        raise ValueError(
            f'{path}: table lacks column(s) {", ".join(missing)} (has '
            f'{", ".join(map(str, names))})'
        )
    return found


def read_table(path, joints=None):
    """:class:`Detections` of a CSV (with a header) or NPZ table.

    Columns: stamp (s) or frame, track, joint, x, y, conf.

    ``joint`` holds names, or indices into ``joints`` (default the COCO order).
    """
    path = Path(path)
    try:
        if path.suffix.lower() == '.npz':
            with np.load(path, allow_pickle=False) as z:
                cols = {k: z[k] for k in z.files}
        else:
            with open(path, newline='') as f:
                reader = csv.DictReader(f)
                table = list(reader)
                cols = {k: np.array([row[k] for row in table]) for k in reader.fieldnames or ()}
    except (OSError, ValueError, csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f'{path}: not a readable CSV/NPZ table: {exc}') from exc
    found = _table_columns(list(cols), path)
    used = {str(name): np.asarray(cols[name]) for name in found.values() if name is not None}
    if len({a.shape for a in used.values()}) > 1 or any(a.ndim != 1 for a in used.values()):
        shapes = ', '.join(f'{k} {a.shape}' for k, a in used.items())
        raise ValueError(f'{path}: the columns must be equally long 1-D arrays, not {shapes}')
    if not len(cols[found['track']]):
        raise ValueError(f'{path}: the table is empty')
    names = cols[found['joint']]
    try:
        index = names.astype(np.int64)
        joints = tuple(joints or COCO_JOINTS)
        if index.min() < 0 or index.max() >= len(joints):
            raise ValueError(
                f'{path}: joint indices must be in 0..{len(joints) - 1} ({", ".join(joints)})'
            )
    except ValueError:
        joints = tuple(dict.fromkeys(str(n) for n in names))
        index = np.array([joints.index(str(n)) for n in names], np.int64)
    try:
        num = {k: cols[found[k]].astype(np.float64) for k in ('x', 'y', 'conf')}
        track = cols[found['track']].astype(np.int64)
        if found['stamp'] is not None:
            stamp_s = cols[found['stamp']].astype(np.float64)
            unique_s, frame = np.unique(stamp_s, return_inverse=True)
            stamps = dict(enumerate(unique_s.tolist()))
        else:
            frame, stamps = cols[found['frame']].astype(np.int64), None
    except (ValueError, OverflowError) as exc:
        raise ValueError(f'{path}: non-numeric stamp, frame, track, x, y or conf: {exc}') from exc
    return Detections(
        frame.astype(np.int64),
        track,
        index,
        num['x'],
        num['y'],
        np.clip(num['conf'], 0, 1),
        joints,
        stamps,
        None,
    )


def _stamps_ns(frames, detections, fps, start_s):
    """Stamp (ns) per frame index: index / fps, or the recorded times."""
    if fps is not None:
        if not fps > 0:
            raise ValueError(f'fps must be positive, not {fps}')
        seconds = [start_s + f / fps for f in frames]
    elif not detections.stamps_s:
        raise ValueError('the input holds no per-frame stamps: give --fps')
    elif missing := [f for f in frames if f not in detections.stamps_s]:
        raise ValueError(f'frames {missing[:5]} have no stamp: give --fps')
    else:
        seconds = [start_s + detections.stamps_s[f] for f in frames]
    bad = next((s for s in seconds if not 0.0 <= s <= MAX_STAMP_S), None)  # NaN too
    if bad is not None:
        raise ValueError(
            f'stamp {bad:g} is not a ROS time in seconds (0 to {MAX_STAMP_S}; '
            'nanoseconds would be 1e9 times too large)'
        )
    stamps = {f: int(round(s * 1e9)) for f, s in zip(frames, seconds)}
    if len(set(stamps.values())) != len(stamps):
        raise ValueError('two frames share a stamp')
    return stamps


def to_frames(
    detections,
    projection,
    fps=None,
    start_s=0.0,
    facilitator_id=None,
    facilitator_seat=None,
    seat_tolerance=0.05,
    min_confidence=0.0,
):
    """(GroupFrames of the participants, {stamp: facilitator (J, 3)}, report).

    Computed from :class:`Detections`.

    The facilitator is track ``facilitator_id`` or the person nearest
    ``facilitator_seat`` (u) in each frame; frames without them are gaps.
    Untracked detections get the ids of the external backend's tracker (the
    one the nodes use), so ``facilitator_id`` then names one of those.
    """
    from social_pose_diffusion.perception.external import ExternalExtractor
    from social_pose_diffusion.perception.facilitator import identify_facilitator

    tracker = None if detections.tracked else ExternalExtractor(max_people=1000)

    d, drops = detections, Counter()
    ours = joint_map(d.joints)[d.joint]
    unused = sorted({d.joints[j] for j in np.unique(d.joint[ours < 0])})
    u, v, inside = projection.to_uv(d.x, d.y)
    finite = np.isfinite(d.x) & np.isfinite(d.y) & np.isfinite(d.conf)
    seen = d.conf > min_confidence
    keep = (ours >= 0) & finite & inside & seen
    drops['not_one_of_our_joints'] = int((ours < 0).sum())
    drops['non_finite'] = int(((ours >= 0) & ~finite).sum())
    drops['outside_image'] = int(((ours >= 0) & finite & ~inside & seen).sum())
    drops['unseen_or_below_min_confidence'] = int(((ours >= 0) & finite & ~seen).sum())
    frames = sorted(set(d.frame.tolist()))
    stamps = _stamps_ns(frames, d, fps, start_s)
    out, facilitator, duplicates, ids = [], {}, 0, set()
    for f in frames:
        rows = d.frame == f
        tracks = np.unique(d.track[rows])
        kp = np.zeros((len(tracks), NUM_JOINTS, 3), np.float32)
        r = np.flatnonzero(rows & keep)
        person = np.searchsorted(tracks, d.track[r])
        slot = person * NUM_JOINTS + ours[r]
        duplicates += len(slot) - len(np.unique(slot))
        kp[person, ours[r]] = np.column_stack([u[r], v[r], d.conf[r]])
        present = kp[..., 2].max(-1) > 0
        frame = GroupFrame(stamps[f], tracks[present].astype(np.int32), kp[present])
        if tracker is not None:
            frame = tracker.process_keypoints(frame)
            ids.update(frame.ids.tolist())
        if facilitator_id is not None or facilitator_seat is not None:
            frame, fac = identify_facilitator(
                frame,
                seat_u=facilitator_seat,
                tolerance=seat_tolerance,
                facilitator_id=facilitator_id,
            )
            if fac is not None:
                facilitator[stamps[f]] = fac
        out.append(frame)
    drops['duplicate_joint_in_frame'] = int(duplicates)
    report = {
        'frames': len(frames),
        'tracks': len(ids) if tracker is not None else int(len(np.unique(d.track))),
        'tracked_on_import': tracker is not None,
        'points': int(len(d.frame)),
        'imported_points': int(keep.sum()) - int(duplicates),
        'dropped': dict(drops),
        'source_joints_not_used': unused,
        'missing_joints': [n for n in JOINT if n not in {str(j).lower() for j in d.joints}],
        'facilitator_frames': len(facilitator),
        'facilitator_gaps': len(frames) - len(facilitator),
    }
    return out, facilitator, report


def write_bag(out, frames, facilitator, info):
    """Write a session bag (participants, facilitator where seen, ``/session/info``) at ``out``.

    Written next to ``out`` and renamed at the end, so a failed import leaves nothing.
    """
    from social_pose_diffusion.msgs.topics import FACILITATOR_TOPIC, GROUP_TOPIC, INFO_TOPIC
    from social_pose_diffusion.sources.bags import SessionWriter

    out = Path(out)
    if out.exists():
        raise ValueError(f'{out} already exists; rosbag2 writes a new directory')
    if not facilitator:
        raise ValueError(
            'the facilitator was found in no frame: check --facilitator-id or --facilitator-seat'
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    try:
        with SessionWriter(tmp / 'bag') as bag:
            bag.text(INFO_TOPIC, frames[0].stamp_ns, info)
            for frame in frames:
                bag.keypoints(GROUP_TOPIC, frame)
                if frame.stamp_ns in facilitator:
                    bag.keypoints(
                        FACILITATOR_TOPIC,
                        single_person(frame.stamp_ns, facilitator[frame.stamp_ns]),
                    )
        (tmp / 'bag').rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def import_file(path, out, projection, fps=None, joints=None, **who):
    """Import a COCO JSON (``.json``) or table (``.csv``/``.npz``) into the session bag ``out``.

    Returns the report.

    ``who`` selects the facilitator (:func:`to_frames`); the stamps' median
    rate is the session's fps in ``/session/info``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'no keypoint file at {path}')
    if path.suffix.lower() == '.json':
        detections, fmt = read_coco(path, joints), 'coco'
    elif path.suffix.lower() in ('.csv', '.npz'):
        detections, fmt = read_table(path, joints), 'table'
    else:
        raise ValueError(
            f'{path}: unknown keypoint format (use .json for COCO-style, .csv or .npz for a table)'
        )
    if callable(projection):  # the image size may come from the file
        projection = projection(detections.size)
    frames, facilitator, report = to_frames(detections, projection, fps, **who)
    stamps = np.array([f.stamp_ns for f in frames], np.int64)
    if len(stamps) < 2:
        raise ValueError(f'{path}: needs at least two frames, has {len(stamps)}')
    rate = float(1e9 / np.median(np.diff(stamps)))
    info = {
        'source': str(path),
        'format': fmt,
        'fps': round(rate, 6),
        'projection': projection.kind,
        'width': projection.width,
        'height': projection.height,
        **({'vfov_deg': projection.vfov_deg} if projection.kind == 'cylindrical' else {}),
        'import': report,
    }
    for key, name in (
        ('facilitator_id', 'facilitator_id'),
        ('facilitator_seat', 'facilitator_seat_u'),
    ):
        if who.get(key) is not None:
            info[name] = who[key]
    write_bag(out, frames, facilitator, info)
    return {'fps': info['fps'], **report}
