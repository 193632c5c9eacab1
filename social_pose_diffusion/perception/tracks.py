"""Stable person ids across frames.

Association on the sphere, motion between updates, seats remembered.

People in a discussion sit still: a person lost for a while (turned away,
hidden, gone for a coffee) and found again where they sat gets their old id
back from the seat memory, and a new id is never taken from a seat a
neighbour is still using.
"""

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import NUM_JOINTS
from social_pose_diffusion.perception.equirect import angle_between, ray_to_uv, uv_to_ray
from social_pose_diffusion.perception.people import centre, scale

SEAT_MATCH = 1.0  # a returning person is within this many shoulder widths of their seat
VELOCITY_SMOOTHING = 0.5  # weight of the newest centre velocity measurement
MAX_PREDICT_S = 0.3  # keypoints are carried forward by their velocity for at most this long
MAX_SPEED = np.radians(60.0)  # rad/s: faster estimates are noise (seated people)


def rotate(keypoints: ArrayLike, rotation: ArrayLike) -> np.ndarray:
    """(J, 3) keypoints turned rigidly on the sphere by a rotation vector (radians).

    Bone angles are kept.
    """
    kp = np.asarray(keypoints, np.float64)
    angle = float(np.linalg.norm(rotation))
    if angle < 1e-12:
        return kp.copy()
    k = np.asarray(rotation, np.float64) / angle
    rays = uv_to_ray(kp[:, :2])
    turned = (
        rays * np.cos(angle)
        + np.cross(k, rays) * np.sin(angle)
        + np.outer(rays @ k, k) * (1 - np.cos(angle))
    )
    return np.concatenate([ray_to_uv(turned), kp[:, 2:]], axis=1)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation vector turning unit ray ``a`` onto ``b``."""
    axis = np.cross(a, b)
    norm = np.linalg.norm(axis)
    return np.zeros(3) if norm < 1e-12 else axis / norm * float(angle_between(a, b))


@dataclass
class Track:
    """One person: keypoints (J, 3) measured at ``measured_ns``, last seen at ``last_seen_ns``.

    Also their angular velocity and backend state.
    """

    id: int
    keypoints: np.ndarray
    last_seen_ns: int
    roi: object = None
    velocity: np.ndarray = field(
        default_factory=lambda: np.zeros(3)
    )  # rad/s rotation vector of the centre
    hits: int = 1  # landmark updates that found them
    misses: int = 0  # consecutive updates that did not
    confirmed: bool = True
    tried_ns: int | None = None  # last landmark update attempt
    interval_s: float | None = None  # running mean time between successful updates
    measured_ns: int = -1  # when ``keypoints`` were measured (landmarks or flow); -1: last_seen_ns
    reference: object = None  # backend state for updates between landmark results (flow)

    def __post_init__(self):
        if self.measured_ns < 0:
            self.measured_ns = self.last_seen_ns

    def measured(self, keypoints, stamp_ns, roi=None):
        """A new landmark result: the person was seen."""
        dt = (stamp_ns - self.last_seen_ns) * 1e-9
        if dt > 0:
            self.interval_s = (
                dt
                if self.interval_s is None
                else self.interval_s + VELOCITY_SMOOTHING * (dt - self.interval_s)
            )
        self.moved(keypoints, stamp_ns)
        self.last_seen_ns = int(stamp_ns)
        self.roi = roi if roi is not None else self.roi
        self.hits, self.misses = self.hits + 1, 0

    def moved(self, keypoints, stamp_ns):
        """New keypoints measured at ``stamp_ns``, by landmarks or by flow alone.

        Velocity from the centre's move since the last measurement; flow alone
        does not count as seeing the person (``last_seen_ns``, ``hits`` stay).
        """
        dt = (stamp_ns - self.measured_ns) * 1e-9
        if dt > 0:
            speed = rotation_between(centre(self.keypoints), centre(keypoints)) / dt
            norm = np.linalg.norm(speed)
            speed = speed if norm <= MAX_SPEED else speed * MAX_SPEED / norm
            self.velocity = self.velocity + VELOCITY_SMOOTHING * (speed - self.velocity)
        self.keypoints, self.measured_ns = np.asarray(keypoints, np.float32), int(stamp_ns)

    def predict(self, stamp_ns: int) -> np.ndarray:
        """Keypoints at ``stamp_ns``: the last measured ones moved on by the velocity.

        At most MAX_PREDICT_S.
        """
        dt = min(max((stamp_ns - self.measured_ns) * 1e-9, 0.0), MAX_PREDICT_S)
        return rotate(self.keypoints, self.velocity * dt).astype(np.float32)

    def missing_ns(self, stamp_ns: int) -> int:
        """How long the person has been looked for in vain.

        To the last attempt, or to ``stamp_ns`` if none.
        """
        until = self.tried_ns if self.tried_ns is not None else stamp_ns
        return max(until - self.last_seen_ns, 0)

    def speed(self) -> float:
        """Angular speed in own shoulder widths per second (for scheduling updates by motion)."""
        return float(np.linalg.norm(self.velocity)) / scale(self.keypoints)


class TrackSet:
    """Tracks of the people in view, and the seats of those lost.

    :meth:`update` keeps the id a backend already knows for a person
    (``claimed``) and otherwise gives each person the id of the nearest
    unclaimed track whose centre is within ``match_distance_deg`` (seated
    people barely move), else a seat's or a new id (:meth:`new_id`). Tracks
    unseen for ``timeout_s`` are retired to the seat memory, kept for
    ``seat_memory_s``; a stamp older than the previous one resets everything
    (a looping bag or a time jump). Ids start at 1 (0 is the facilitator's).
    """

    def __init__(self, match_distance_deg=8.0, timeout_s=2.0, seat_memory_s=600.0):
        self.match_distance = np.radians(match_distance_deg)
        self.timeout_ns = int(timeout_s * 1e9)
        self.seat_memory_ns = int(seat_memory_s * 1e9)
        self.reset()

    def reset(self):
        """Forget every track and seat; ids start again at 1."""
        self.tracks, self.seats, self.next_id, self.last_stamp = {}, {}, 1, None

    def drop(self, ids):
        """Retire these ids now without keeping their seat.

        E.g. a track that converged onto someone else.
        """
        for i in ids:
            self.tracks.pop(i, None)

    def begin(self, stamp_ns):
        """Start a frame: True when it reset.

        Reset on a backwards time jump, retire lost tracks to seats.

        A track is lost when it has not been seen for ``timeout_s``; for a
        track whose updates are attempted (``tried_ns``) that time runs to the
        last attempt, so frames the backend never got to (a slow first frame,
        a busy machine) do not count against anybody.
        """
        jumped = self.last_stamp is not None and stamp_ns < self.last_stamp
        if jumped:
            self.reset()
        self.last_stamp = stamp_ns
        for i, t in list(self.tracks.items()):
            if t.missing_ns(stamp_ns) > self.timeout_ns:
                del self.tracks[i]
                if t.confirmed:
                    self.seats[i] = (centre(t.keypoints), scale(t.keypoints), t.last_seen_ns)
        self.seats = {
            i: s for i, s in self.seats.items() if stamp_ns - s[2] <= self.seat_memory_ns
        }
        return jumped

    def new_id(self, keypoints):
        """The id of the free seat this person sits on, else a new one.

        Within SEAT_MATCH shoulder widths.
        """
        here, size = centre(keypoints), scale(keypoints)
        best, gap = None, np.inf
        for i, (seat, seat_size, _) in self.seats.items():
            d = float(angle_between(here, seat))
            if i not in self.tracks and d < SEAT_MATCH * max(size, seat_size) and d < gap:
                best, gap = i, d
        if best is not None:
            del self.seats[best]
            return best
        self.next_id += 1
        return self.next_id - 1

    def add(self, keypoints, stamp_ns, roi=None, confirmed=True):
        """A newly found person as a track (a seat's id or a new one)."""
        track = Track(
            self.new_id(keypoints),
            np.asarray(keypoints, np.float32),
            int(stamp_ns),
            roi,
            confirmed=confirmed,
        )
        self.tracks[track.id] = track
        return track

    def update(self, people, stamp_ns, claimed=None, rois=None):
        """Ids for ``people`` seen at ``stamp_ns``, as a :class:`GroupFrame`.

        ``people`` is a sequence of (J, 3).
        """
        n = len(people)
        claimed = list(claimed) if claimed is not None else [None] * n
        rois = list(rois) if rois is not None else [None] * n
        ids = [c if c in self.tracks else None for c in claimed]
        free = [i for i in self.tracks if i not in ids]
        if free and None in ids:
            here = np.array([centre(p) for p in people])
            there = np.array([centre(self.tracks[i].keypoints) for i in free])
            dist = angle_between(here[:, None], there[None])
            for k, j in zip(*np.unravel_index(np.argsort(dist, axis=None), dist.shape)):
                if dist[k, j] > self.match_distance:
                    break
                if ids[k] is None and free[j] not in ids:
                    ids[k] = free[j]
        for k in range(n):
            if ids[k] is None:
                ids[k] = self.add(people[k], stamp_ns, rois[k]).id
            else:
                self.tracks[ids[k]].measured(people[k], stamp_ns, rois[k])
        order = np.argsort(ids)
        keypoints = np.asarray(people, np.float32).reshape(n, NUM_JOINTS, 3)[order]
        return GroupFrame(int(stamp_ns), np.asarray(ids, np.int32)[order], keypoints)
