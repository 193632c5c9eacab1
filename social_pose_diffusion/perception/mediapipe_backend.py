"""The MediaPipe extractor: discovery over two rings of views.

Landmark updates are scheduled within a time budget.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import MEDIAPIPE_INDEX, NUM_JOINTS
from social_pose_diffusion.perception import flow
from social_pose_diffusion.perception.discovery import (
    MERGE_FRACTION,
    detect_in_view,
    merge,
    ring_views,
)
from social_pose_diffusion.perception.equirect import angle_between, uv_to_ray
from social_pose_diffusion.perception.mediapipe_models import (
    LANDMARK_SIZE,
    ROI_CENTRE,
    ROI_SCALE_POINT,
    LandmarkModel,
    PoseDetector,
)
from social_pose_diffusion.perception.people import centre, same_person, scale, upright
from social_pose_diffusion.perception.roi import Roi, RoiTrack
from social_pose_diffusion.perception.schedule import FrameBudget
from social_pose_diffusion.perception.tracks import TrackSet
from social_pose_diffusion.perception.validate import check_options, check_panorama
from social_pose_diffusion.perception.verify import (
    DEFAULT_MIN_CONFIDENCE,
    TENTATIVE_MARGIN,
    evidence,
    plausible,
)

DEFAULT_INTERVAL_NS = 33_000_000  # frame interval assumed until two frames have been seen
MAX_JUMP = (
    0.75  # a tracked person's centre moves less than this many shoulder widths between updates
)
REJECT_MEMORY_NS = (
    1_000_000_000  # a rejected candidate is not checked again for this long (the ring comes back)
)


class MediaPipeExtractor:
    """Everyone's keypoints in equirectangular BGR frames.

    See :func:`make_extractor` for the options.

    Tracking: each tracked person's ROI (from their previous landmarks) is
    rendered as an upright 256x256 perspective view for one landmark
    inference; a person stays while the pose flag passes ``track_confidence``
    and the body stays upright and in place (a miss is retried at the last
    ROI that found them). Within ``budget_ms`` per frame only some people
    are updated (:class:`FrameBudget`: oldest and fastest first, nobody older
    than ``max_staleness_ms`` when it can be helped); the others' keypoints
    are moved by optical flow from their last landmark update (``flow``,
    :mod:`flow`: about 1 ms a person) or else carried forward rigidly by
    their motion, stamped in :attr:`person_stamps` (when the published
    keypoints were measured, by landmarks or flow). A missed person is still
    reported for ``hold_s``.
    Discovery: MediaPipe's detector over a ring of wide views and a ring of
    zoomed views along the horizon (small, far people), all after a reset,
    then a slice per frame so both rings are re-scanned every
    ``discovery_period`` frames as the budget allows. Candidates are
    verified (:mod:`verify`): evidence at least ``min_confidence`` makes a
    person at once, a little less an unconfirmed track that must be found
    again in ``confirm_frames`` updates. Ids come from a :class:`TrackSet`
    (seat-aware: a person found again where they sat gets their old id).
    """

    def __init__(
        self,
        max_people=16,
        min_confidence=DEFAULT_MIN_CONFIDENCE,
        track_confidence=0.2,
        discovery_period=30,
        view_fov_deg=60.0,
        view_size=256,
        view_step_deg=20.0,
        view_pitch_deg=0.0,
        zoom_fov_deg=30.0,
        zoom_step_deg=15.0,
        zoom_pitch_deg=-3.0,
        detect_passes=3,
        refine_passes=1,
        confirm_frames=2,
        hold_s=1.0,
        budget_ms=50.0,
        max_staleness_ms=200.0,
        track_timeout_s=2.0,
        seat_memory_s=600.0,
        match_distance_deg=8.0,
        workers=2,
        flow=True,
        clock=time.perf_counter,
    ):
        check_options(
            max_people=(max_people, 1, 1000),
            min_confidence=(min_confidence, 0.0, 1.0),
            track_confidence=(track_confidence, 0.0, 1.0),
            discovery_period=(discovery_period, 0, 10**9),
            view_fov_deg=(view_fov_deg, 10.0, 150.0),
            view_size=(view_size, 64, 2048),
            view_step_deg=(view_step_deg, 1.0, 360.0),
            view_pitch_deg=(view_pitch_deg, -60.0, 60.0),
            zoom_fov_deg=(zoom_fov_deg, 0.0, 150.0),
            zoom_step_deg=(zoom_step_deg, 1.0, 360.0),
            zoom_pitch_deg=(zoom_pitch_deg, -60.0, 60.0),
            detect_passes=(detect_passes, 1, 10),
            refine_passes=(refine_passes, 0, 10),
            confirm_frames=(confirm_frames, 0, 100),
            hold_s=(hold_s, 0.0, 60.0),
            budget_ms=(budget_ms, 0.0, 10000.0),
            max_staleness_ms=(max_staleness_ms, 1.0, 60000.0),
            track_timeout_s=(track_timeout_s, 0.0, 3600.0),
            seat_memory_s=(seat_memory_s, 0.0, 86400.0),
            match_distance_deg=(match_distance_deg, 0.0, 180.0),
            workers=(workers, 1, 16),
        )
        self.max_people, self.min_confidence = int(max_people), float(min_confidence)
        self.track_confidence, self.confirm_frames = float(track_confidence), int(confirm_frames)
        self.detect_passes, self.refine_passes = int(detect_passes), int(refine_passes)
        self.flow = bool(flow)
        self.hold_ns = int(hold_s * 1e9)
        self.views = ring_views(view_fov_deg, int(view_size), view_step_deg, view_pitch_deg)
        if zoom_fov_deg > 0:
            self.views += ring_views(zoom_fov_deg, int(view_size), zoom_step_deg, zoom_pitch_deg)
        period = int(discovery_period)
        self.views_per_frame = (
            len(self.views) / period if period > 0 else 0.0
        )  # fractional: carried over
        self.tracks = TrackSet(match_distance_deg, track_timeout_s, seat_memory_s)
        self.budget = FrameBudget(float(budget_ms), float(max_staleness_ms), clock, int(workers))
        self._detector = PoseDetector()
        self._models = [LandmarkModel() for _ in range(int(workers))]
        self._pool = (
            ThreadPoolExecutor(int(workers), thread_name_prefix='landmarks')
            if workers > 1
            else None
        )
        self.stats, self.person_stamps = {}, {}
        self.reset()

    def reset(self):
        """Forget every track and seat; the next frame runs discovery over every view."""
        self.tracks.reset()
        self._next_view, self._scan_credit, self._last_stamp, self._interval_ns = (
            None,
            0.0,
            None,
            None,
        )
        self._rejected = []  # (stamp_ns, Roi) of candidates that failed verification

    def landmarks(self, pano, roi, model=None):
        """``(presence, keypoints (J, 3), next Roi)`` of the person in ``roi``.

        presence: the pose flag.
        """
        view = roi.view(LANDMARK_SIZE)
        presence, lm = (model or self._models[0])(
            cv2.cvtColor(view.render(pano), cv2.COLOR_BGR2RGB)
        )
        uv = view.to_uv(lm[:, :2])
        keypoints = np.concatenate(
            [uv[list(MEDIAPIPE_INDEX)], lm[list(MEDIAPIPE_INDEX), 2:3]], axis=1
        )
        return presence, keypoints, Roi.from_points(uv[ROI_CENTRE], uv[ROI_SCALE_POINT])

    def follow(self, pano, state, model=None):
        """``(presence, keypoints or None, RoiTrack, flow reference or None)``.

        The person at ``state.next``, else at ``state.good``.
        """
        for roi in dict.fromkeys((state.next, state.good)):
            presence, keypoints, derived = self.landmarks(pano, roi, model)
            if presence >= self.track_confidence and upright(keypoints):
                return (
                    presence,
                    keypoints,
                    RoiTrack(roi.follow(derived), roi),
                    self._reference(pano, roi, keypoints),
                )
        return 0.0, None, state, None

    def _reference(self, pano, roi, keypoints):
        """The flow reference of a landmark result in ``roi`` (None without flow)."""
        return flow.reference(pano, roi.view(flow.FLOW_SIZE), keypoints) if self.flow else None

    def _map(self, work, items):
        """``[work(item, model)]``.

        The items are shared round-robin among the worker threads' landmark models.
        """
        if self._pool is None or len(items) < 2:
            return [work(item, self._models[0]) for item in items]
        n = len(self._models)
        jobs = [
            self._pool.submit(lambda k: [work(item, self._models[k]) for item in items[k::n]], k)
            for k in range(n)
        ]
        results = [job.result() for job in jobs]
        return [results[i % n][i // n] for i in range(len(items))]

    def verify(self, pano, score, roi, model=None):
        """``(evidence, keypoints, RoiTrack)`` of a detector candidate.

        None when no pass is plausible.

        ``1 + refine_passes`` landmark passes, each from the last one's ROI
        (the detector's ROI is rough for people half hidden or cut off, the
        landmarks' own is better); evidence (:func:`verify.evidence`) uses
        the mean pose flag of the plausible passes and the best one's keypoints.
        """
        rois, passes = [roi], []
        while len(passes) <= self.refine_passes:
            presence, keypoints, derived = self.landmarks(pano, rois[-1], model)
            passes.append((presence, keypoints, plausible(keypoints, rois[-1])))
            rois.append(derived)
        good = [k for k, (_, _, ok) in enumerate(passes) if ok]
        if not good:
            return None
        best = max(good, key=lambda k: passes[k][0])
        value = evidence(np.mean([passes[k][0] for k in good]), score, passes[best][1])
        return value, passes[best][1], RoiTrack(rois[best + 1], rois[best])

    def discover(self, pano, views, known=()):
        """New ``[(score, Roi)]`` candidates from the detector in ``views``.

        Away from ``known`` (keypoints, Roi).
        """
        people = [k for k, _ in known]
        candidates = [
            c
            for view in views
            for c in detect_in_view(self._detector, pano, view, self.detect_passes, people)
        ]
        return merge(candidates, [roi for _, roi in known])

    def _views_due(self, full):
        """Every view after a reset, else the next slice.

        The slice is what the scan credit and the budget allow (at least one).
        """
        if full:
            self._next_view, self._scan_credit = 0, 0.0
            return self.views
        due = int(self._scan_credit + 1e-9)
        count = max(self.budget.views(due), min(due, 1))  # the scan always moves on, budget or not
        self._scan_credit -= count
        k = self._next_view
        self._next_view = (k + count) % len(self.views)
        return [self.views[(k + i) % len(self.views)] for i in range(count)]

    def _update_tracks(self, pano, stamp_ns, full):
        """Flow updates, then landmark updates for the people the budget picks.

        Everyone gets landmarks after a reset; returns ``(landmark updates, flow updates)``.
        """
        tracks = self.tracks.tracks
        ages = {
            i: stamp_ns - (t.tried_ns if t.tried_ns is not None else t.last_seen_ns)
            for i, t in tracks.items()
        }
        flowed = 0 if full else self._flow_updates(pano, stamp_ns)
        urgent = {i for i, t in tracks.items() if not t.confirmed or t.misses == 1}
        reserve = self.budget.view_cost.value if self._scan_credit >= 1 else 0.0
        picked = (
            list(tracks)
            if full
            else self.budget.pick(
                ages,
                self._interval_ns or DEFAULT_INTERVAL_NS,
                urgent,
                {i: t.speed() for i, t in tracks.items()},
                reserve,
            )
        )
        start = self.budget.clock()
        chosen = [tracks[i] for i in picked]
        results = zip(chosen, self._map(lambda t, model: self.follow(pano, t.roi, model), chosen))
        self.budget.round_cost.add(self.budget.clock() - start, self.budget.rounds(len(picked)))
        for track, (_, keypoints, state, reference) in results:
            track.tried_ns = stamp_ns
            if keypoints is not None and self._in_place(track, keypoints, stamp_ns):
                track.measured(keypoints, stamp_ns, state)
                track.reference = reference
                track.confirmed = track.confirmed or track.hits > self.confirm_frames
            elif not track.confirmed:
                self.tracks.drop([track.id])  # a candidate not found again: not a person
            else:
                track.misses += 1
        self._drop_duplicates(set(picked))
        return len(picked), flowed

    def _in_place(self, track, keypoints, stamp_ns):
        """True when ``keypoints`` lie where ``track``'s person is expected now (MAX_JUMP)."""
        expected = centre(track.predict(stamp_ns))
        return angle_between(centre(keypoints), expected) < MAX_JUMP * scale(track.keypoints)

    def _flow_updates(self, pano, stamp_ns):
        """Flow updates of the confirmed people found at their last landmark update.

        Run before the budget picks landmark updates, so it sees what flow
        cost (about 1 ms a person); returns how many moved.
        """
        moved = 0
        for track in self.tracks.tracks.values():
            if track.reference is None or not track.confirmed or track.misses:
                continue
            keypoints = flow.follow(pano, track.reference)
            if keypoints is not None and self._in_place(track, keypoints, stamp_ns):
                track.moved(keypoints, stamp_ns)
                moved += 1
        return moved

    def _drop_duplicates(self, updated):
        """Retire tracks that converged onto the same person as an older, confirmed one."""
        tracks = self.tracks.tracks
        order = sorted(tracks, key=lambda i: (not tracks[i].confirmed, i))
        kept = []
        for i in order:
            if i in updated and any(
                same_person(tracks[i].keypoints, tracks[j].keypoints) for j in kept
            ):
                self.tracks.drop([i])
            else:
                kept.append(i)

    def _add_candidates(self, pano, candidates, stamp_ns):
        """Verified candidates as tracks, best evidence first.

        Confirmed at ``min_confidence``, else unconfirmed.

        A candidate where one was rejected less than a second ago is not
        checked again (a chair or a poster would cost landmark passes on every
        scan); returns ``(added, skipped)``.
        """
        self._rejected = [(t, r) for t, r in self._rejected if stamp_ns - t < REJECT_MEMORY_NS]
        fresh = [c for c in candidates if not any(_near(c[1], r) for _, r in self._rejected)]
        checked = self._map(lambda c, model: self.verify(pano, *c, model), fresh)
        verified = []
        for (_, roi), result in zip(fresh, checked):
            if result is None or result[0] < self.min_confidence - TENTATIVE_MARGIN:
                self._rejected.append((stamp_ns, roi))
            else:
                verified.append(result)
        added = 0
        for value, keypoints, state in sorted(verified, key=lambda r: -r[0]):
            if any(same_person(keypoints, t.keypoints) for t in self.tracks.tracks.values()):
                continue
            track = self.tracks.add(
                keypoints,
                stamp_ns,
                state,
                confirmed=value >= self.min_confidence or self.confirm_frames == 0,
            )
            track.tried_ns = (
                stamp_ns  # lost only after attempts fail, however long the next frame takes
            )
            track.reference = self._reference(pano, state.good, keypoints)
            added += 1
        return added, len(candidates) - len(fresh)

    def _tick(self, stamp_ns):
        """Frame interval bookkeeping and the rolling scan's credit for this frame."""
        if self._last_stamp is not None and stamp_ns > self._last_stamp:
            dt = stamp_ns - self._last_stamp
            self._interval_ns = (
                dt if self._interval_ns is None else int(0.8 * self._interval_ns + 0.2 * dt)
            )
        self._last_stamp = stamp_ns
        self._scan_credit = min(self._scan_credit + self.views_per_frame, float(len(self.views)))

    def process(self, bgr, stamp_ns):
        """A :class:`GroupFrame` of the people in one equirectangular BGR frame.

        Raises :class:`PerceptionError` for an unusable image; a frame without
        people gives an empty GroupFrame. Keypoints of people not updated in
        this frame are predicted; :attr:`person_stamps` says when each was measured.
        """
        bgr = check_panorama(bgr)
        stamp_ns = int(stamp_ns)
        self.budget.start()
        start = self.budget.clock()
        if self.tracks.begin(stamp_ns):
            self.reset()
            self.tracks.begin(stamp_ns)
        full = self._next_view is None
        self._tick(stamp_ns)
        updated, flowed = self._update_tracks(bgr, stamp_ns, full)
        tracked = self.budget.clock()
        views = self._views_due(full)
        known = [(t.keypoints, t.roi.next) for t in self.tracks.tracks.values()]
        candidates = self.discover(bgr, views, known)
        scanned = self.budget.clock()
        if not full:
            self.budget.view_cost.add(scanned - tracked, len(views))
        added, skipped = self._add_candidates(bgr, candidates, stamp_ns)
        frame = self._output(stamp_ns)
        end = self.budget.clock()
        staleness = {int(i): 1e-6 * (stamp_ns - s) for i, s in self.person_stamps.items()}
        seen = [1e-6 * (stamp_ns - self.tracks.tracks[i].last_seen_ns) for i in self.person_stamps]
        self.stats = {
            'views_scanned': len(views),
            'tracking_ms': 1e3 * (tracked - start),
            'discovery_ms': 1e3 * (end - tracked),
            'total_ms': 1e3 * (end - start),
            'candidates': len(candidates),
            'added': added,
            'skipped': skipped,
            'updated': updated,
            'flowed': flowed,
            'people': len(frame),
            'tracks': len(self.tracks.tracks),
            'staleness_ms': staleness,
            'staleness_ms_max': max(staleness.values(), default=0.0),
            'landmark_age_ms_max': max(seen, default=0.0),
            'update_interval_ms': {
                int(t.id): 1e3 * t.interval_s
                for t in self.tracks.tracks.values()
                if t.id in self.person_stamps and t.interval_s is not None
            },
        }
        return frame

    def _output(self, stamp_ns):
        """Confirmed people not missed for more than ``hold_s``; sets person_stamps.

        Keypoints are carried forward.
        """
        shown = [
            t
            for t in self.tracks.tracks.values()
            if t.confirmed and t.missing_ns(stamp_ns) <= self.hold_ns
        ]
        shown = sorted(
            sorted(shown, key=lambda t: (t.misses, -t.hits))[: self.max_people], key=lambda t: t.id
        )
        self.person_stamps = {t.id: t.measured_ns for t in shown}
        if not shown:
            return GroupFrame(
                stamp_ns, np.zeros(0, np.int32), np.zeros((0, NUM_JOINTS, 3), np.float32)
            )
        keypoints = np.stack(
            [t.keypoints if t.measured_ns == stamp_ns else t.predict(stamp_ns) for t in shown]
        )
        return GroupFrame(
            stamp_ns, np.array([t.id for t in shown], np.int32), keypoints.astype(np.float32)
        )


def _near(a, b):
    """True when two ROIs are one candidate (as :func:`discovery.merge` decides)."""
    return angle_between(uv_to_ray((a.u, a.v)), uv_to_ray((b.u, b.v))) <= MERGE_FRACTION * max(
        a.radius, b.radius
    )
