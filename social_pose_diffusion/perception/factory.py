"""Choosing a perception backend by name."""
from social_pose_diffusion.perception.validate import PerceptionError

BACKENDS = ('mediapipe', 'external')


def make_extractor(backend='mediapipe', **options):
    """An extractor for ``backend``; unknown options raise :class:`PerceptionError`.

    ``mediapipe`` (:class:`MediaPipeExtractor`) options and defaults:
    max_people=16, min_confidence=0.6 (mean pose flag of the landmark model
    over a new person's passes to accept them; tracked people stay while
    MediaPipe's own flag passes 0.5),
    discovery_period=30 (frames per re-scan of the whole ring of views, a
    slice per frame; 0 = only on the first frame after a reset),
    view_fov_deg=60, view_size=256, view_step_deg=20, view_pitch_deg=0
    (up positive),
    detect_passes=3 (detector runs per view, found faces masked between),
    refine_passes=1 (extra landmark passes for a new person),
    track_timeout_s=2.0, match_distance_deg=8, workers=2 (threads for the
    tracked people's landmark passes).
    ``external`` (:class:`ExternalExtractor`): max_people=16,
    track_timeout_s=2.0, match_distance_deg=8.
    """
    if backend == 'mediapipe':
        from social_pose_diffusion.perception.mediapipe_backend import MediaPipeExtractor as cls
    elif backend == 'external':
        from social_pose_diffusion.perception.external import ExternalExtractor as cls
    else:
        raise PerceptionError(f'unknown perception backend {backend!r} (choose from {", ".join(BACKENDS)})')
    try:
        return cls(**options)
    except TypeError as exc:
        raise PerceptionError(f'bad option for the {backend} backend: {exc}') from None
