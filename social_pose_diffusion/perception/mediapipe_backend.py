"""The MediaPipe extractor: periodic discovery, then one landmark pass per tracked person per frame."""
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from social_pose_diffusion.core.skeleton import MEDIAPIPE_INDEX
from social_pose_diffusion.perception.discovery import detect_in_view, merge, ring_views
from social_pose_diffusion.perception.mediapipe_models import (LANDMARK_SIZE, ROI_CENTRE, ROI_SCALE_POINT, LandmarkGraph, LandmarkModel,
                               PoseDetector)
from social_pose_diffusion.perception.people import torso_upright, unique, upright
from social_pose_diffusion.perception.roi import Roi, RoiTrack
from social_pose_diffusion.perception.tracks import TrackSet
from social_pose_diffusion.perception.validate import check_options, check_panorama

FACE = [0, 1, 2]  # nose and eyes
NEW_FACE_VISIBILITY = 0.8  # a new person needs a clearly visible face; tracked ones may turn away


class MediaPipeExtractor:
    """Everyone's keypoints in equirectangular BGR frames (see :func:`make_extractor` for the options).

    Each frame, every tracked person's ROI (from their previous landmarks)
    is rendered as an upright 256x256 perspective view and run through
    MediaPipe's landmark graph; a person stays while its pose flag passes,
    and a miss is retried at the last ROI that found them. The ROI holds
    still until the landmarks move it by more than a little. Discovery runs
    the detector over a ring of views for people not yet tracked: all views
    on the first frame after a reset, then a slice of the ring per frame, so
    the whole ring is re-scanned every ``discovery_period`` frames without a
    latency spike (0: only after a reset). New candidates are confirmed (see
    :meth:`_confirm`). People whose joints coincide are merged (a track that
    converged onto someone else is retired) and upside-down poses dropped;
    ids come from a :class:`TrackSet`. With ``workers`` > 1 the tracked
    people's landmark passes run in parallel threads (MediaPipe releases the
    GIL), one landmark graph per thread.
    """

    def __init__(self, max_people=16, min_confidence=0.6, discovery_period=30,
                 view_fov_deg=60.0, view_size=256, view_step_deg=20.0, view_pitch_deg=0.0, detect_passes=3,
                 refine_passes=1, track_timeout_s=2.0, match_distance_deg=8.0, workers=2):
        check_options(max_people=(max_people, 1, 1000), min_confidence=(min_confidence, 0.0, 1.0),
                      discovery_period=(discovery_period, 0, 10 ** 9), view_fov_deg=(view_fov_deg, 10.0, 150.0),
                      view_size=(view_size, 64, 2048), view_step_deg=(view_step_deg, 1.0, 360.0),
                      view_pitch_deg=(view_pitch_deg, -60.0, 60.0), detect_passes=(detect_passes, 1, 10),
                      refine_passes=(refine_passes, 0, 10), track_timeout_s=(track_timeout_s, 0.0, 3600.0),
                      match_distance_deg=(match_distance_deg, 0.0, 180.0), workers=(workers, 1, 16))
        self.max_people, self.min_confidence = int(max_people), float(min_confidence)
        self.detect_passes, self.refine_passes = int(detect_passes), int(refine_passes)
        self.views = ring_views(view_fov_deg, int(view_size), view_step_deg, view_pitch_deg)
        period = int(discovery_period)
        self.views_per_frame = len(self.views) / period if period > 0 else 0.0  # fractional: carried over
        self.tracks = TrackSet(match_distance_deg, track_timeout_s)
        self._detector, self._confirmer = PoseDetector(), LandmarkModel()
        self._trackers = [LandmarkGraph() for _ in range(int(workers))]
        self._pool = ThreadPoolExecutor(int(workers), thread_name_prefix='landmarks') if workers > 1 else None
        self.stats = {}
        self.reset()

    def reset(self):
        """Forget every track; the next frame runs discovery."""
        self.tracks.reset()
        self._next_view = None

    def landmarks(self, pano, roi, model=None):
        """``(presence, keypoints (J, 3), next Roi)`` of the person in ``roi``; keypoints None if nobody.

        ``model`` defaults to MediaPipe's landmark graph (presence 0 or 1);
        the OpenCV runner gives the pose flag's value.
        """
        view = roi.view(LANDMARK_SIZE)
        presence, lm = (model or self._trackers[0])(cv2.cvtColor(view.render(pano), cv2.COLOR_BGR2RGB))
        if lm is None:
            return 0.0, None, roi
        uv = view.to_uv(lm[:, :2])
        keypoints = np.concatenate([uv[list(MEDIAPIPE_INDEX)], lm[list(MEDIAPIPE_INDEX), 2:3]], axis=1)
        return presence, keypoints, Roi.from_points(uv[ROI_CENTRE], uv[ROI_SCALE_POINT])

    def follow(self, pano, state, model=None):
        """``(presence, keypoints or None, RoiTrack)``: the person at ``state.next``, else at ``state.good``."""
        for roi in dict.fromkeys((state.next, state.good)):
            presence, keypoints, derived = self.landmarks(pano, roi, model)
            if keypoints is not None and upright(keypoints):
                return presence, keypoints, RoiTrack(roi.follow(derived), roi)
        return 0.0, None, state

    def _track_all(self, pano, tracks):
        """``[(track, follow result)]``, the tracks shared round-robin among the worker graphs."""
        if self._pool is None or len(tracks) < 2:
            return [(t, self.follow(pano, t.roi)) for t in tracks]
        n = len(self._trackers)
        jobs = [self._pool.submit(lambda k: [self.follow(pano, t.roi, self._trackers[k]) for t in tracks[k::n]], k)
                for k in range(n)]
        results = [job.result() for job in jobs]
        return [(tracks[i], results[i % n][i // n]) for i in range(len(tracks))]

    def _confirm(self, pano, roi):
        """``(presence, keypoints, RoiTrack)`` of a new candidate, or None.

        Landmark passes with the OpenCV runner (each from the last one's ROI)
        must all find an upright person (head over shoulders over hips), with
        a mean pose flag of at least ``min_confidence`` and a clearly visible
        face; then the tracking graph must find them too, at the last ROI or
        at the pass with the best flag.
        """
        rois, passes = [roi], []
        while len(passes) <= self.refine_passes:
            passes.append(self.landmarks(pano, rois[-1], self._confirmer))
            if passes[-1][1] is None or not (upright(passes[-1][1]) and torso_upright(passes[-1][1])):
                return None
            rois.append(passes[-1][2])
        if (np.mean([p for p, _, _ in passes]) < self.min_confidence
                or passes[-1][1][FACE, 2].mean() < NEW_FACE_VISIBILITY):
            return None
        best = rois[int(np.argmax([p for p, _, _ in passes]))]
        presence, keypoints, state = self.follow(pano, RoiTrack(rois[-1], best))
        return None if keypoints is None else (presence, keypoints, state)

    def discover(self, pano, views, known=()):
        """New ``[(score, Roi)]`` candidates from the detector in ``views``, away from ``known`` (keypoints, Roi)."""
        people = [k for k, _ in known]
        candidates = [c for view in views for c in detect_in_view(self._detector, pano, view, self.detect_passes,
                                                                  people)]
        return merge(candidates, [roi for _, roi in known])

    def _views_due(self):
        """The whole ring after a reset, else the next slice of it (``discovery_period`` frames per turn)."""
        if self._next_view is None:
            self._next_view, self._scan_credit = 0, 0.0
            return self.views
        self._scan_credit += self.views_per_frame
        count = int(self._scan_credit + 1e-9)
        self._scan_credit -= count
        k = self._next_view
        self._next_view = (k + count) % len(self.views)
        return [self.views[(k + i) % len(self.views)] for i in range(count)]

    def process(self, bgr, stamp_ns):
        """A :class:`GroupFrame` of the people in one equirectangular BGR frame.

        Raises :class:`PerceptionError` for an unusable image; a frame without
        people gives an empty GroupFrame.
        """
        bgr = check_panorama(bgr)
        start = time.perf_counter()
        if self.tracks.begin(int(stamp_ns)):
            self._next_view = None
        found = []  # (presence, keypoints, RoiTrack, track id or None)
        for track, (presence, keypoints, state) in self._track_all(bgr, list(self.tracks.tracks.values())):
            if keypoints is not None:
                found.append((presence, keypoints, state, track.id))
        tracked = time.perf_counter()
        views = self._views_due()
        candidates = self.discover(bgr, views, [(f[1], f[2].next) for f in found])
        for _, roi in candidates:
            new = self._confirm(bgr, roi)
            if new is not None:
                found.append(new + (None,))
        # Tracked people first (keep their ids), then by presence.
        kept = unique([f[1] for f in found], key=lambda i: (found[i][3] is None, -found[i][0]))
        kept = kept[:self.max_people]
        self.tracks.drop(f[3] for i, f in enumerate(found) if i not in kept and f[3] is not None)
        frame = self.tracks.update([found[i][1] for i in kept], int(stamp_ns),
                                   [found[i][3] for i in kept], [found[i][2] for i in kept])
        end = time.perf_counter()
        self.stats = {'views_scanned': len(views), 'tracking_ms': 1e3 * (tracked - start),
                      'discovery_ms': 1e3 * (end - tracked),
                      'total_ms': 1e3 * (end - start), 'candidates': len(candidates),
                      'people': len(frame), 'tracks': len(self.tracks.tracks)}
        return frame
