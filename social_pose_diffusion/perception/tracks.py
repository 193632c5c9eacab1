"""Stable person ids across frames: association by position on the sphere, retirement after a timeout."""
from dataclasses import dataclass

import numpy as np

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import NUM_JOINTS
from social_pose_diffusion.perception.equirect import angle_between
from social_pose_diffusion.perception.people import centre


@dataclass
class Track:
    """One person: last keypoints (J, 3), when last seen, and backend state (e.g. the next ROI)."""

    id: int
    keypoints: np.ndarray
    last_seen_ns: int
    roi: object = None


class TrackSet:
    """Tracks of the people in view.

    :meth:`update` keeps the id a backend already knows for a person
    (``claimed``) and otherwise gives each person the id of the nearest
    unclaimed track whose centre is within ``match_distance_deg`` (seated
    people barely move), or a new id. Tracks unseen for ``timeout_s`` are
    retired; a stamp older than the previous one resets everything (a looping
    bag or a time jump). Ids start at 1 (0 is the facilitator's).
    """

    def __init__(self, match_distance_deg=8.0, timeout_s=2.0):
        self.match_distance = np.radians(match_distance_deg)
        self.timeout_ns = int(timeout_s * 1e9)
        self.reset()

    def reset(self):
        """Forget every track; ids start again at 1."""
        self.tracks, self.next_id, self.last_stamp = {}, 1, None

    def drop(self, ids):
        """Retire these ids now (e.g. a track that converged onto someone else)."""
        for i in ids:
            self.tracks.pop(i, None)

    def begin(self, stamp_ns):
        """Start a frame: reset on a backwards time jump, retire stale tracks; True when it reset."""
        jumped = self.last_stamp is not None and stamp_ns < self.last_stamp
        if jumped:
            self.reset()
        self.last_stamp = stamp_ns
        self.tracks = {i: t for i, t in self.tracks.items() if stamp_ns - t.last_seen_ns <= self.timeout_ns}
        return jumped

    def update(self, people, stamp_ns, claimed=None, rois=None):
        """Ids for ``people`` (sequence of (J, 3)) seen at ``stamp_ns``, as a :class:`GroupFrame`."""
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
                ids[k], self.next_id = self.next_id, self.next_id + 1
            self.tracks[ids[k]] = Track(ids[k], np.asarray(people[k], np.float32), stamp_ns, rois[k])
        order = np.argsort(ids)
        keypoints = np.asarray(people, np.float32).reshape(n, NUM_JOINTS, 3)[order]
        return GroupFrame(int(stamp_ns), np.asarray(ids, np.int32)[order], keypoints)
