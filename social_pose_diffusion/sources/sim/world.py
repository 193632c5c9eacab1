"""The synthetic group discussion: seats, turn-taking and everyone's 2D skeleton over time.

People sit around a 360 camera at the table's centre. Each skeleton is built
joint by joint on the sphere's tangent plane with fixed bone lengths per
person (see :mod:`social_pose_diffusion.skeleton`), driven by a few angles:
head turn and nod, torso lean, and two angles per arm.

Turn-taking: one speaker at a time, short pauses between turns; speakers
gesture, listeners turn their heads toward the speaker and nod. The
facilitator turns toward the speaker, nods while listening and, after a long
silence, invites the participant who has spoken least with a hand gesture,
using the left or the right hand with equal probability.

The rules are causal in what the camera sees, so the behaviour is learnable
from the group:

- the facilitator starts to turn a human reaction delay (the style's
  ``reaction_s``, jittered per event) after the cue: a new speaker starts to
  gesture, listeners turn to them;
- an invitation follows ``SILENCE_BEFORE_INVITE_S`` of nobody speaking; the
  gesture starts a reaction delay after that, and the invitee starts to speak
  once the raised hand is held;
- the invitee is whoever has spoken least, each second of speech counted
  with a weight that fades with time constant ``INVITE_MEMORY_S`` (a memory
  like the policy's motion memory, not a hard window whose edge the camera
  cannot see; ties, e.g. two who never spoke, broken at random).
"""

import numpy as np

from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import JOINT, NUM_JOINTS, from_tangent, wrap_u
from social_pose_diffusion.sources.sim.styles import STYLES

FACILITATOR_ID = 0
SILENCE_BEFORE_INVITE_S = 2.0
INVITE_MEMORY_S = 30.0
INVITE_S = (0.5, 0.5, 0.5)  # raise, hold, lower
# Rest body in radians on the tangent plane (x to the image right, y down).
SHOULDER_W, UPPER_ARM, FOREARM, TORSO, NECK = 0.30, 0.22, 0.20, 0.40, 0.19
NOSE_EYE, EYE_EAR = 0.035, 0.055
REST_ARM = (0.15, -0.9)  # upper-arm and forearm angles from straight down, outward positive
INVITE_ARM = (1.15, 1.9)


def _approach(x, target, dt, tau):
    return x + (target - x) * (1.0 - np.exp(-dt / tau))


def _bump(phase):
    """Raised-cosine pulse on [0, 1], 0 outside."""
    return np.where(
        (phase >= 0) & (phase <= 1), 0.5 - 0.5 * np.cos(2 * np.pi * np.clip(phase, 0, 1)), 0.0
    )


def _turns(rng, frames, fps, participants, reaction):
    """Per-frame speaker, invitee and hand from the turn-taking process.

    Also each invitation's delay.

    ``reaction()`` draws a reaction delay in frames; an invitation (the
    ``invite`` label starts when the silence ends) is visible that much later.
    """
    speaker = np.full(frames, -1, np.int64)
    invite = np.full(frames, -1, np.int64)
    hand = np.full(frames, -1, np.int64)
    delays = {}
    fade = np.exp(-1.0 / (INVITE_MEMORY_S * fps))
    t = int(rng.uniform(0.5, 1.2) * fps)
    current = -1
    while t < frames:
        if current >= 0 and rng.random() < 0.35:
            t += int(SILENCE_BEFORE_INVITE_S * fps)
            past = np.arange(min(t, frames))
            weight = fade ** (t - past)  # frame k of speech counts fade^(t - k)
            spoken = np.array([weight[speaker[past] == p].sum() for p in range(participants)])
            current = int(rng.choice(np.flatnonzero(spoken == spoken.min())))
            delays[t] = delay = reaction()
            n = int(sum(INVITE_S) * fps) + delay
            invite[t : t + n], hand[t : t + n] = current, rng.integers(2)
            t += int((INVITE_S[0] + INVITE_S[1]) * fps) + delay
        else:
            if current >= 0:
                t += int(rng.uniform(0.3, 0.9) * fps)
            choices = [p for p in range(participants) if p != current]
            current = int(rng.choice(choices))
        n = int(rng.uniform(2.5, 6.0) * fps)
        speaker[t : t + n] = current
        t += n
    return speaker, invite, hand, delays


def _delayed(target, delays, reaction):
    """``target`` with every change taking effect a reaction delay later.

    ``delays`` fixes some, by frame.
    """
    out = np.full_like(target, -1)
    changes = np.flatnonzero(np.r_[True, target[1:] != target[:-1]])
    starts = [c + (delays[c] if c in delays else reaction()) for c in changes] + [len(target)]
    for i, c in enumerate(changes):
        out[starts[i] : starts[i + 1]] = target[c]
    return out


def _seats(rng, people):
    """Distinct seat azimuths (u) spread around the table, facilitator first."""
    base = rng.uniform(0, 1) + np.arange(people) / people
    return (base + rng.uniform(-0.25, 0.25, people) / people) % 1.0


class _Body:
    """One person's fixed proportions and seat."""

    def __init__(self, rng, seat_u):
        self.seat_u = seat_u
        self.v = 0.53 + rng.normal(0, 0.008)
        self.scale = rng.uniform(0.85, 1.15)
        self.lengths = self.scale * np.array(
            [SHOULDER_W, UPPER_ARM, FOREARM, TORSO, NECK, NOSE_EYE, EYE_EAR]
        )
        self.phase = rng.uniform(0, 2 * np.pi, 4)

    def skeleton(self, head_x, head_y, lean, left_arm, right_arm):
        """(T, J, 2) keypoints from per-frame angles; bones keep their lengths exactly."""
        sw, upper, fore, torso, neck, nose_eye, eye_ear = self.lengths
        frames = len(head_x)
        pose = np.zeros((frames, NUM_JOINTS, 2))
        mid = np.tile([self.seat_u, self.v], (frames, 1))
        c, s = np.cos(lean), np.sin(lean)

        def rot(x, y):  # rotate local offsets by the torso lean
            return np.stack([c * x - s * y, s * x + c * y], -1)

        ls = from_tangent(mid, rot(sw / 2, 0.0))
        pose[:, JOINT['left_shoulder']] = ls
        pose[:, JOINT['right_shoulder']] = from_tangent(ls, rot(-sw, 0.0))
        for side, sign, (alpha, beta) in (('left', 1.0, left_arm), ('right', -1.0, right_arm)):
            shoulder = pose[:, JOINT[f'{side}_shoulder']]
            elbow = from_tangent(
                shoulder, rot(sign * upper * np.sin(alpha), upper * np.cos(alpha))
            )
            pose[:, JOINT[f'{side}_elbow']] = elbow
            pose[:, JOINT[f'{side}_wrist']] = from_tangent(
                elbow, rot(sign * fore * np.sin(beta), fore * np.cos(beta))
            )
            hip_dir = np.array([-sign * 0.12, 1.0]) / np.hypot(0.12, 1.0)
            pose[:, JOINT[f'{side}_hip']] = from_tangent(shoulder, rot(*(torso * hip_dir)))
        nose = from_tangent(mid, rot(head_x, -neck + head_y))
        pose[:, JOINT['nose']] = nose
        for side, sign in (('left', 1.0), ('right', -1.0)):
            eye = from_tangent(nose, rot(sign * nose_eye * 0.8, -nose_eye * 0.6))
            pose[:, JOINT[f'{side}_eye']] = eye
            pose[:, JOINT[f'{side}_ear']] = from_tangent(eye, rot(sign * eye_ear, eye_ear * 0.15))
        return pose


def _nods(rng, frames, fps, rate_hz, listening):
    """Nod depth per frame: raised-cosine dips of 0.6 s at Poisson times while listening."""
    depth = np.zeros(frames)
    starts = np.flatnonzero((rng.random(frames) < rate_hz / fps) & listening)
    width = int(0.6 * fps)
    for start in starts:
        depth[start : start + width] = np.maximum(
            depth[start : start + width], _bump(np.arange(min(width, frames - start)) / width)
        )
    return depth


def simulate(
    style: str = 'music_teacher',
    participants: int = 4,
    seconds: float = 20.0,
    fps: float = 30.0,
    seed: int = 0,
) -> Session:
    """Simulate one facilitated discussion.

    Returns a :class:`Session` (keypoints, speaker, invitations).
    """
    if style not in STYLES:
        raise ValueError(f'unknown style {style!r}; choose from {", ".join(STYLES)}')
    if not 3 <= participants <= 6:
        raise ValueError(f'participants must be 3 to 6, not {participants}')
    if seconds <= 0 or fps <= 0:
        raise ValueError('seconds and fps must be positive')
    st = STYLES[style]
    rng = np.random.default_rng(seed)
    frames, dt = int(round(seconds * fps)), 1.0 / fps
    t = np.arange(frames) * dt
    seats = _seats(rng, participants + 1)
    bodies = [_Body(rng, u) for u in seats]
    # Reaction delays come from their own stream, so turn-taking does not depend on them.
    reacting = np.random.default_rng([seed, 1])

    def reaction():
        return int(round(max(0.1, st.reaction_s + reacting.normal(0, st.reaction_jitter_s)) * fps))

    speaker, invite, hand, delays = _turns(rng, frames, fps, participants, reaction)
    seat_of = seats[1:]

    people = np.zeros((frames, participants, NUM_JOINTS, 2))
    for p in range(participants):
        body = bodies[p + 1]
        talking = speaker == p
        toward = np.where(speaker >= 0, seat_of[np.maximum(speaker, 0)], body.seat_u)
        look = np.where(
            talking | (speaker < 0), 0.0, 0.06 * np.sin(np.pi * wrap_u(toward - body.seat_u))
        )
        gesture, head_x = np.zeros(frames), np.zeros(frames)
        for k in range(1, frames):
            gesture[k] = _approach(gesture[k - 1], float(talking[k]), dt, 0.4)
            head_x[k] = _approach(head_x[k - 1], look[k], dt, 0.3)
        wave = np.sin(2 * np.pi * 1.3 * t + body.phase[0])
        nod = 0.02 * _nods(rng, frames, fps, 0.4, ~talking & (speaker >= 0))
        bob = 0.008 * gesture * np.sin(2 * np.pi * 2.1 * t + body.phase[1])
        left = (
            REST_ARM[0] + gesture * (0.25 + 0.15 * wave),
            REST_ARM[1] - gesture * (1.1 + 0.4 * wave),
        )
        wave_r = np.sin(2 * np.pi * 1.1 * t + body.phase[2])
        right = (
            REST_ARM[0] + gesture * (0.2 + 0.15 * wave_r),
            REST_ARM[1] - gesture * (0.9 + 0.4 * wave_r),
        )
        lean = 0.03 * np.sin(2 * np.pi * 0.11 * t + body.phase[3])
        people[:, p] = body.skeleton(head_x, nod + bob, lean, left, right)

    # The facilitator: turns toward the speaker (or the invitee), nods, invites with one hand.
    body = bodies[0]
    amp = st.amplitude
    target = np.where(invite >= 0, invite, speaker)
    held = target.copy()
    for k in range(1, frames):
        held[k] = held[k] if held[k] >= 0 else held[k - 1]
    held = _delayed(held, delays, reaction)
    rel = np.where(
        held >= 0, np.sin(np.pi * wrap_u(seat_of[np.maximum(held, 0)] - body.seat_u)), 0.0
    )
    head_x, lean = np.zeros(frames), np.zeros(frames)
    for k in range(1, frames):
        head_x[k] = _approach(head_x[k - 1], 0.10 * amp * rel[k], dt, st.response_s)
        lean[k] = _approach(lean[k - 1], 0.10 * amp * rel[k], dt, 2 * st.response_s)
    nod = 0.035 * amp * _nods(rng, frames, fps, st.nod_rate_hz, (speaker >= 0) & (invite < 0))
    breath = 0.004 * amp * np.sin(2 * np.pi * 0.25 * t + body.phase[0])
    raise_ = np.zeros(frames)
    for start in np.flatnonzero((invite >= 0) & (np.r_[-1, invite[:-1]] < 0)):
        k = np.arange(frames) - start - delays[start]
        rise, hold, lower = (int(s * fps) for s in INVITE_S)
        raise_ = np.maximum(
            raise_, np.clip(np.minimum(k / rise, (rise + hold + lower - k) / lower), 0, 1)
        )
    reach = (0.5 + 0.5 * amp) * (0.5 - 0.5 * np.cos(np.pi * raise_))
    arms = []
    for h in (0, 1):  # 0 left, 1 right
        r = reach * (hand == h)
        arms.append(
            (
                REST_ARM[0]
                + r * (INVITE_ARM[0] - REST_ARM[0])
                + 0.02 * amp * np.sin(2 * np.pi * 0.2 * t + h),
                REST_ARM[1] + r * (INVITE_ARM[1] - REST_ARM[1]),
            )
        )
    facilitator = body.skeleton(head_x, nod + breath, lean, arms[0], arms[1])

    conf = np.ones((frames, 1), np.float32)
    stamps = (np.arange(frames) * 1e9 / fps).astype(np.int64) + 1_700_000_000 * 1_000_000_000
    info = {
        'style': style,
        'fps': fps,
        'seed': seed,
        'seconds': seconds,
        'participants': participants,
        'facilitator_id': FACILITATOR_ID,
        'facilitator_seat_u': float(seats[0]),
        'participant_seats_u': [float(u) for u in seat_of],
        'scales': [b.scale for b in bodies],
        'reaction_s': st.reaction_s,
        'invite_memory_s': INVITE_MEMORY_S,
    }
    return Session(
        stamps_ns=stamps,
        participant_ids=np.arange(1, participants + 1, dtype=np.int32),
        participants=np.concatenate(
            [people, np.broadcast_to(conf[:, None, :, None], people.shape[:-1] + (1,))], -1
        ).astype(np.float32),
        facilitator=np.concatenate(
            [facilitator, np.broadcast_to(conf[..., None], facilitator.shape[:-1] + (1,))], -1
        ).astype(np.float32),
        speaker=speaker,
        invite=invite,
        invite_hand=hand,
        info=info,
        attend=held,
    )
