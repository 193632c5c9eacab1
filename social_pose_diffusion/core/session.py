"""A discussion session as aligned arrays: the group, the facilitator and what happened.

Real recordings have gaps (frames where the facilitator was not detected)
and unseen joints (confidence 0). Time is measured from the stamps; a step
longer than :data:`GAP_PERIODS` frame periods is a gap, where the session
splits into segments so no delta ever spans it.
"""

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.skeleton import (
    BONES,
    PARENTS,
    apply_delta,
    bone_lengths,
    pose_delta,
    wrap_u,
)

GAP_PERIODS = 1.5  # a step longer than this many median frame periods is a gap
SEEN = 0.5  # a joint counts as confidently seen at this confidence
RATE_TOLERANCE = 0.1


def stream_fps(stamps_ns: ArrayLike) -> float | None:
    """Frame rate of a stream from its stamps (median period, robust to gaps), to 1e-3 fps.

    None under two frames. The rounding absorbs stamps truncated to whole
    nanoseconds (30 fps, not 30.0000003).
    """
    steps = np.diff(np.asarray(stamps_ns, np.int64))
    steps = steps[steps > 0]
    return round(float(1e9 / np.median(steps)), 3) if len(steps) else None


def rate_mismatch(
    model_fps: float, stream_rate: float | None, tolerance: float = RATE_TOLERANCE
) -> str | None:
    """A warning when a stream's rate differs too much from the model's, else None.

    Too much is by more than ``tolerance`` (relative).

    The policy times its plans and counts its history in the model's frames,
    so a stream at another rate plays the plan at the wrong speed.
    """
    if stream_rate is None or abs(stream_rate - model_fps) <= tolerance * model_fps:
        return None
    return (
        f'the input stream runs at {stream_rate:.1f} fps but the model was trained at '
        f'{model_fps:.1f} fps: plans will play {model_fps / stream_rate:.2f}x too fast or '
        'slow; retrain on data at this rate'
    )


@dataclass
class Session:
    """Frame-aligned arrays of one recorded or simulated session.

    ``participants[t, p]`` is participant ``participant_ids[p]``'s (J, 3)
    keypoints at ``stamps_ns[t]`` (confidence 0 where not seen);
    ``facilitator[t]`` is the facilitator's (J, 3) (confidence 0 where not
    seen: such joints are masked in losses and metrics). ``speaker``,
    ``invite`` (participant index or -1) and ``invite_hand`` (-1 none, 0
    left, 1 right) are known for simulated sessions and -1 otherwise;
    ``attend`` (participant index or -1), when known, is whom the facilitator
    is turned to at each frame (the simulator's drive signal: the speaker or
    invitee after a reaction delay). ``info`` holds the session's metadata
    (style, fps, seed, seats, ...).
    """

    stamps_ns: np.ndarray
    participant_ids: np.ndarray
    participants: np.ndarray
    facilitator: np.ndarray
    speaker: np.ndarray
    invite: np.ndarray
    invite_hand: np.ndarray
    info: dict = field(default_factory=dict)
    attend: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.stamps_ns)

    @property
    def fps(self) -> float:
        """Frame rate from the stamps (the data's), else the metadata's, else 30."""
        rate = stream_fps(self.stamps_ns)
        return rate if rate is not None else float(self.info.get('fps', 30.0))

    def attention(self) -> np.ndarray | None:
        """Per frame the participant the facilitator faces (-1: nobody yet), or None unknown.

        ``attend`` when the session has it, else the invitee or the speaker held
        through pauses; None for a recording without speaker labels.
        """
        if self.attend is not None:
            return np.asarray(self.attend)
        if not (self.speaker >= 0).any():
            return None
        target = np.where(self.invite >= 0, self.invite, self.speaker)
        for k in range(1, len(target)):
            if target[k] < 0:
                target[k] = target[k - 1]
        return target

    def invitation_onsets(self) -> np.ndarray:
        """Frames where an invitation starts (the ``invite`` label turns on)."""
        return np.flatnonzero((self.invite >= 0) & (np.r_[-1, self.invite[:-1]] < 0))

    def segments(self) -> list[tuple[int, int]]:
        """``(start, stop)`` frame ranges without gaps.

        No step inside one is longer than GAP_PERIODS periods.
        """
        if len(self) < 2:
            return [(0, len(self))]
        steps = np.diff(np.asarray(self.stamps_ns, np.int64))
        cuts = np.flatnonzero(steps > GAP_PERIODS * 1e9 / self.fps) + 1
        edges = np.r_[0, cuts, len(self)]
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    def segment_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per frame: the first and one-past-last frame of its segment, (T,) each."""
        start, stop = np.zeros(len(self), np.int64), np.zeros(len(self), np.int64)
        for a, b in self.segments():
            start[a:b], stop[a:b] = a, b
        return start, stop

    def seen(self) -> np.ndarray:
        """(T, J) bool: the facilitator's joint was detected (confidence > 0)."""
        return np.asarray(self.facilitator)[..., 2] > 0

    def filled(self) -> 'Session':
        """A copy whose unseen facilitator joints have positions.

        For observations only (confidence stays 0).

        An unseen joint keeps its offset from the seen joints' centre at the
        nearest frame where it was seen; a joint never seen hangs below its
        parent by the median bone length. Losses and metrics mask them.
        """
        fac = np.array(self.facilitator, np.float64)
        seen = fac[..., 2] > 0
        if seen.all() or not seen.any():
            return self
        t = np.arange(len(fac))
        first = fac[t, seen.argmax(1), 0]
        du = np.where(seen, wrap_u(fac[..., 0] - first[:, None]), 0.0).sum(1) / np.maximum(
            seen.sum(1), 1
        )
        dv = np.where(seen, fac[..., 1], 0.0).sum(1) / np.maximum(seen.sum(1), 1)
        anchor = np.stack([(first + du) % 1.0, dv], -1)
        some = seen.any(1)  # a frame with nothing seen keeps the previous centre
        anchor = anchor[np.maximum.accumulate(np.where(some, t, 0))]
        offset = pose_delta(anchor[:, None], fac[..., :2])
        lengths = dict(zip((c for _, c in BONES), self.bone_lengths()))
        for j, parent in enumerate(PARENTS):
            if not seen[:, j].any():
                drop = lengths.get(j, 0.0) / np.pi
                offset[:, j] = (offset[:, parent] if parent >= 0 else 0.0) + np.array([0.0, drop])
                continue
            nearest = np.where(seen[:, j], t, -1)
            after = np.where(seen[:, j], t, len(t))
            before = np.maximum.accumulate(nearest)
            after = np.minimum.accumulate(after[::-1])[::-1]
            pick = np.where(
                (before < 0) | ((after < len(t)) & (after - t < t - before)), after, before
            )
            offset[:, j] = offset[pick, j]
        fac[..., :2] = np.where(
            seen[..., None], fac[..., :2], apply_delta(anchor[:, None], offset)
        )
        fac[..., 2] = np.where(seen, fac[..., 2], 0.0)
        return Session(
            self.stamps_ns,
            self.participant_ids,
            self.participants,
            fac.astype(np.float32),
            self.speaker,
            self.invite,
            self.invite_hand,
            self.info,
        )

    def bone_lengths(self, frames=None) -> np.ndarray:
        """The facilitator's bone lengths (radians).

        Per bone the median over confidently seen frames.

        A bone never seen confidently falls back to any frame where both ends
        have confidence, else to its parent bone's length (an ear's to the
        eye's), else to the median of the other bones.
        """
        fac = np.asarray(self.facilitator, np.float64)
        fac = fac if frames is None else fac[frames]
        lengths = bone_lengths(fac[..., :2])
        conf = np.stack([np.minimum(fac[:, p, 2], fac[:, c, 2]) for p, c in BONES], -1)
        out = np.full(len(BONES), np.nan)
        for threshold in (SEEN, 1e-9):
            for b in np.flatnonzero(np.isnan(out)):
                ok = conf[:, b] >= threshold
                if ok.any():
                    out[b] = np.median(lengths[ok, b])
        out[out <= 1e-6] = np.nan
        fallback = np.median(out[np.isfinite(out)]) if np.isfinite(out).any() else 0.1
        index = {c: b for b, (_, c) in enumerate(BONES)}
        for b, (p, _) in enumerate(BONES):  # parents precede children
            if np.isnan(out[b]):
                out[b] = out[index[p]] if p in index and np.isfinite(out[index[p]]) else fallback
        return out

    def bone_variation(self, frames=None) -> float:
        """Mean relative deviation of the data's own confident bones from :meth:`bone_lengths`.

        Real 2D bones change with pose and detector noise (13-19 % on real
        tracks): a model's bone error is judged against this, not against 0.
        """
        fac = np.asarray(self.facilitator, np.float64)
        fac = fac if frames is None else fac[frames]
        ref = self.bone_lengths(frames)
        conf = np.stack([np.minimum(fac[:, p, 2], fac[:, c, 2]) for p, c in BONES], -1) >= SEEN
        rel = np.abs(bone_lengths(fac[..., :2]) - ref) / ref
        return float(rel[conf].mean()) if conf.any() else 0.0
