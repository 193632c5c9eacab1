"""Choosing a perception backend by name."""

from social_pose_diffusion.perception.validate import PerceptionError

BACKENDS = ('mediapipe', 'external')


def make_extractor(backend='mediapipe', **options):
    """An extractor for ``backend``; unknown options raise :class:`PerceptionError`.

    ``mediapipe`` (:class:`MediaPipeExtractor`) options and defaults:
    max_people=16; min_confidence=DEFAULT_MIN_CONFIDENCE (0.5: evidence
    from pose flag, detector score and head/shoulder/arm visibility that
    accepts a new person at once; from 0.2 below it a candidate is tracked
    unconfirmed until confirm_frames=2 more updates find it);
    track_confidence=0.2 (pose flag that keeps a tracked person);
    hold_s=1.0 (a missed person is still reported this long);
    budget_ms=50 (per-frame time for landmark updates and detector views;
    0 = update everyone every frame), max_staleness_ms=200 (nobody waits
    longer for an update when it can be helped); flow=True (between
    landmark updates people are moved by optical flow from their last
    landmark update, about 1 ms a person; False: carried forward rigidly);
    discovery_period=30 (frames per re-scan of every view, a slice per
    frame; 0 = only on the first frame after a reset),
    view_fov_deg=60, view_size=256, view_step_deg=20, view_pitch_deg=0
    (up positive), zoom_fov_deg=30 (a second ring for small, far people;
    0 = off), zoom_step_deg=15, zoom_pitch_deg=-3,
    detect_passes=3 (detector runs per view, found faces masked between),
    refine_passes=1 (extra landmark passes for a new person),
    track_timeout_s=2.0, seat_memory_s=600 (a person found again within a
    shoulder width of their old seat gets their old id),
    match_distance_deg=8, workers=2 (threads for landmark updates and candidate checks),
    clock=time.perf_counter (injectable for tests).
    ``external`` (:class:`ExternalExtractor`): max_people=16,
    track_timeout_s=2.0, match_distance_deg=8, seat_memory_s=600.
    """
    if backend == 'mediapipe':
        from social_pose_diffusion.perception.mediapipe_backend import MediaPipeExtractor as cls
    elif backend == 'external':
        from social_pose_diffusion.perception.external import ExternalExtractor as cls
    else:
        raise PerceptionError(
            f'unknown perception backend {backend!r} (choose from {", ".join(BACKENDS)})'
        )
    try:
        return cls(**options)
    except TypeError as exc:
        raise PerceptionError(f'bad option for the {backend} backend: {exc}') from None
