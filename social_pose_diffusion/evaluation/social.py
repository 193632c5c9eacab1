"""Closed-loop social evaluation.

Does the generated facilitator respond to the group?

Every facilitator (the policy, and the baselines in the same run) drives
itself over the whole held-out part of a session: at each frame it sees the
group and its own executed poses and executes one new pose, as the policy
node does. What it did is then judged against what the session's group did:

- **head turns**: head yaw (nose u minus the shoulders' midpoint u, u wraps)
  against the speaker bearing ``sin(pi * wrap(target seat - facilitator
  seat))`` (target: the speaker, or the invitee during an invitation, held
  through pauses; the simulator's own drive signal): correlation, regression
  gain against the true yaw, attention accuracy (the participant decoded from
  the yaw with the demonstrations' yaw-bearing line), and the response to
  each change of speaker (half of the true turn reached within 1 s / 3 s,
  latency, wrong-direction share);
- **invitations**: a hit is a *rising* wrist (either hand) reaching half the
  true lift within 2 s of the onset; the same test at pseudo-onsets far from
  any invitation gives the chance rate; false raises per minute outside
  invitations; the head on the invitee 1 s after the onset; the split of
  raised hands;
- **counterfactual groups** (frozen, mirrored about the facilitator, nobody
  in view, another session's group): a facilitator that follows the group
  changes with it, one that ignores it does not (compared with the distance
  between two rollouts that differ only in the sampling noise);
- **motion realism**: Fréchet distance between windows of generated and true
  motion (joint positions relative to the shoulders and their velocities, as
  Fréchet Gesture Distance does) and the diversity of the sampled plans;
- closed-loop MPJPE.

Baselines: hold the start pose, damped constant velocity, and a rule
facilitator that sees only the group (:class:`RuleFacilitator`).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import (
    JOINT,
    head_yaw,
    joint_distance,
    mirrored,
    pose_delta,
    wrap_u,
)

LEFT_SHOULDER, RIGHT_SHOULDER = JOINT['left_shoulder'], JOINT['right_shoulder']
WRISTS = (JOINT['left_wrist'], JOINT['right_wrist'])
HEAD = tuple(range(5))
ARMS = ((JOINT['left_elbow'], JOINT['left_wrist']), (JOINT['right_elbow'], JOINT['right_wrist']))
TURN_WINDOW_S, INVITE_WINDOW_S, HEAD_ON_INVITEE_S = 3.0, 2.0, 1.0
COUNTERFACTUALS = ('frozen', 'mirrored', 'nobody', 'other')
# The network itself with nobody in view: the agent's idle_alone holds the pose there, which says
# nothing about whether the network would move on its own motion.
UNGUARDED = 'nobody, network alone'
LATE_TRUTH_S = 0.2  # the demonstration replayed this late: a reference row (TruthFacilitator)


# -- what the session says ------------------------------------------------------
def attention_target(session: Session) -> np.ndarray:
    """Per frame the participant the facilitator faces in the demonstration; -1 before anyone."""
    target = session.attention()
    return np.full(len(session), -1) if target is None else target


def seat_bearings(session: Session) -> np.ndarray:
    """``sin(pi * wrap(seat - facilitator seat))`` of every participant (P,)."""
    seats = np.asarray(session.info['participant_seats_u'], np.float64)
    return np.sin(np.pi * wrap_u(seats - float(session.info['facilitator_seat_u'])))


def speaker_bearing(session: Session) -> np.ndarray:
    """The drive signal per frame: the target's bearing, 0 before anyone spoke."""
    target = attention_target(session)
    return np.where(target >= 0, seat_bearings(session)[np.maximum(target, 0)], 0.0)


def has_social_labels(session: Session) -> bool:
    """True when a session knows its speakers and seats (simulated sessions do)."""
    return (
        'participant_seats_u' in session.info
        and 'facilitator_seat_u' in session.info
        and bool((session.speaker >= 0).any())
    )


def invitation_onsets(session: Session, frames: np.ndarray) -> np.ndarray:
    """Frames in ``frames`` where an invitation starts."""
    onsets = session.invitation_onsets()
    return onsets[np.isin(onsets, frames)]


# -- facilitators that drive themselves ------------------------------------------
class Facilitator:
    """One closed-loop facilitator.

    ``start`` with the true history up to frame t0, then one pose per frame.
    """

    name = 'facilitator'
    plans: list = []
    spreads: list[float]  # per-step plan spread, kept by facilitators that sample plans

    def start(self, session: Session, t0: int) -> None:
        raise NotImplementedError

    def step(self, frame: GroupFrame) -> np.ndarray:
        """The (J, 2) pose executed one frame after ``frame``."""
        raise NotImplementedError


class PolicyFacilitator(Facilitator):
    """The policy as the node runs it.

    ``plans`` sampled per frame, their medoid's first pose executed.
    """

    def __init__(
        self,
        policy,
        plans: int = 4,
        sampler: str | None = None,
        steps: int | None = None,
        name: str = 'policy',
        idle_alone: bool = True,
    ):
        self.policy, self.k, self.sampler, self.steps, self.name = (
            policy,
            plans,
            sampler,
            steps,
            name,
        )
        self.idle_alone = idle_alone

    def start(self, session, t0):
        from social_pose_diffusion.evaluation.offline import start_agent

        style = session.info.get('style')
        self.agent = start_agent(
            self.policy,
            session,
            t0,
            samples=self.k,
            sampler=self.sampler,
            steps=self.steps,
            style=style if style in self.policy.config.styles else None,
            idle_alone=self.idle_alone,
        )
        self.spreads = []

    def step(self, frame):
        plan = self.agent.plan(frame)
        if len(plan.samples) > 1:
            first = plan.samples[:, 0]
            self.spreads.append(float(joint_distance(first[:, None], first[None]).mean()))
        return self.agent.execute(plan.stamps_ns[0], plan.poses[0])


class TruthFacilitator(Facilitator):
    """The demonstration itself, replayed: the reference every metric is read against.

    With ``delay_s`` it is replayed that late: a perfect imitator that reacts a
    little slower than the demonstrator, which says how much of each metric a
    short lag alone costs.
    """

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.name = 'truth' if delay_s == 0 else f'truth_{delay_s:g}s_late'

    def start(self, session, t0):
        self.poses, self.t = np.asarray(session.facilitator[:, :, :2], np.float64), t0
        self.lag = round(self.delay_s * session.fps)

    def step(self, frame):
        self.t += 1
        return self.poses[max(0, self.t - self.lag)]


class HoldFacilitator(Facilitator):
    """Holds the pose it starts in."""

    name = 'hold'

    def start(self, session, t0):
        self.pose = np.asarray(session.facilitator[t0, :, :2], np.float64)

    def step(self, frame):
        return self.pose


class VelocityFacilitator(Facilitator):
    """Constant velocity from the last true step, damped by ``damping`` per frame.

    So it comes to rest.
    """

    name = 'constant_velocity'

    def __init__(self, damping: float = 0.9):
        self.damping = damping

    def start(self, session, t0):
        fac = np.asarray(session.facilitator[:, :, :2], np.float64)
        self.pose = fac[t0]
        self.velocity = pose_delta(fac[max(t0 - 1, 0)], fac[t0])

    def step(self, frame):
        self.velocity = self.velocity * self.damping
        self.pose = self.pose + self.velocity
        self.pose[:, 0] %= 1.0
        return self.pose


@dataclass
class RuleCalibration:
    """What the rule facilitator takes from the training demonstrations.

    Yaw per bearing and an invitation arm.
    """

    yaw_per_bearing: float = 0.0
    yaw_at_zero: float = 0.0
    invite_offsets: np.ndarray = field(
        default_factory=lambda: np.zeros((2, 2, 2))
    )  # hand, (elbow, wrist), uv


def calibrate_rule(sessions: list[Session], fraction: float = 0.8) -> RuleCalibration:
    """Fit the rule's two constants on the training part of labelled sessions.

    The training part is the first ``fraction``.
    """
    yaws, bears = [], []
    offsets: dict[int, list[np.ndarray]] = {0: [], 1: []}
    for s in sessions:
        if not has_social_labels(s):
            continue
        cut = int(round(len(s) * fraction))
        fac = np.asarray(s.facilitator[:cut, :, :2], np.float64)
        yaws.append(head_yaw(fac))
        bears.append(speaker_bearing(s)[:cut])
        rest = np.median(fac, 0)
        for t0 in invitation_onsets(s, np.arange(cut)):
            hand = int(s.invite_hand[t0])
            window = fac[t0 : t0 + int(INVITE_WINDOW_S * s.fps)]
            if hand < 0 or not len(window):
                continue
            peak = window[np.argmin(window[:, WRISTS[hand], 1])]
            offsets[hand].append(pose_delta(rest[list(ARMS[hand])], peak[list(ARMS[hand])]))
    yaw, bear = np.concatenate(yaws or [np.zeros(1)]), np.concatenate(bears or [np.zeros(1)])
    gain = _gain(yaw, bear)
    arms = np.zeros((2, 2, 2))
    for hand in (0, 1):
        if offsets[hand]:
            arms[hand] = np.mean(offsets[hand], 0)
    return RuleCalibration(gain, float(yaw.mean() - gain * bear.mean()), arms)


class RuleFacilitator(Facilitator):
    """An observation-only competitor: turn toward whoever moves their arms most.

    Invite the quietest after a silence.

    Each participant's arm activity is the speed of their wrists and elbows
    (smoothed over ``window_s``); the most active one above ``threshold``
    becomes the target and the head turns toward their seat (yaw =
    ``yaw_per_bearing * bearing``, time constant ``response_s``). After
    ``silence_s`` of nobody moving, it raises the hand on the side of the
    participant who moved least over the last ``memory_s`` (the mean
    invitation arm of the demonstrations), holds it and lowers it.
    """

    name = 'rule'

    def __init__(
        self,
        calibration: RuleCalibration,
        window_s: float = 0.5,
        threshold: float = 0.02,
        response_s: float = 0.3,
        silence_s: float = 1.5,
        memory_s: float = 30.0,
    ):
        self.calibration, self.window_s, self.threshold = calibration, window_s, threshold
        self.response_s, self.silence_s, self.memory_s = response_s, silence_s, memory_s

    def start(self, session, t0):
        self.fps = session.fps
        self.pose = np.asarray(session.facilitator[t0, :, :2], np.float64).copy()
        self.rest = self.pose.copy()
        self.seat = float(session.info.get('facilitator_seat_u', 0.5))
        self.yaw = self.base_yaw = float(head_yaw(self.pose))
        self.previous, self.activity, self.spoken = None, {}, {}
        self.target, self.quiet_s, self.invite_t, self.hand = None, 0.0, None, 0

    def _arm_speed(self, frame):
        """Per person id: mean speed (u/s) of wrists and elbows since the last frame."""
        speeds = {}
        prev = self.previous
        joints = [j for arm in ARMS for j in arm]
        for pid, kp in zip(frame.ids, frame.keypoints):
            before = prev.person(pid) if prev is not None else None
            if before is None:
                continue
            seen = (kp[joints, 2] > 0) & (before[joints, 2] > 0)
            if seen.any():
                d = joint_distance(before[joints, :2], kp[joints, :2])[seen]
                speeds[int(pid)] = float(d.mean() * self.fps)
        return speeds

    def step(self, frame):
        dt = 1.0 / self.fps
        a = 1.0 - np.exp(-dt / self.window_s)
        for pid, speed in self._arm_speed(frame).items():
            self.activity[pid] = (1 - a) * self.activity.get(pid, 0.0) + a * speed
            m = 1.0 - np.exp(-dt / self.memory_s)
            self.spoken[pid] = (1 - m) * self.spoken.get(pid, 0.0) + m * speed
        self.previous = frame
        seats = {
            int(pid): float(np.median(kp[:11, 0][kp[:11, 2] > 0]))
            if (kp[:11, 2] > 0).any()
            else None
            for pid, kp in zip(frame.ids, frame.keypoints)
        }
        busy = {
            p: v
            for p, v in self.activity.items()
            if v > self.threshold and seats.get(p) is not None
        }
        if busy:
            self.target, self.quiet_s = max(busy, key=busy.get), 0.0
        else:
            self.quiet_s += dt
        if self.invite_t is None and self.target is not None and self.quiet_s >= self.silence_s:
            known = {p: v for p, v in self.spoken.items() if seats.get(p) is not None}
            if known:
                self.target = min(known, key=known.get)
                self.invite_t, self.quiet_s = 0.0, 0.0
                bearing = np.sin(np.pi * wrap_u(seats[self.target] - self.seat))
                self.hand = 0 if bearing > 0 else 1
        goal = self.yaw
        if self.target is not None and seats.get(self.target) is not None:
            c = self.calibration
            goal = c.yaw_at_zero + c.yaw_per_bearing * np.sin(
                np.pi * wrap_u(seats[self.target] - self.seat)
            )
        self.yaw += (goal - self.yaw) * (1.0 - np.exp(-dt / self.response_s))
        pose = self.rest.copy()
        pose[list(HEAD), 0] = (pose[list(HEAD), 0] + self.yaw - self.base_yaw) % 1.0
        if self.invite_t is not None:
            reach = float(np.clip(min(self.invite_t / 0.5, (1.5 - self.invite_t) / 0.5), 0.0, 1.0))
            arm = list(ARMS[self.hand])
            pose[arm] = pose[arm] + reach * self.calibration.invite_offsets[self.hand]
            pose[arm, 0] %= 1.0
            self.invite_t += dt
            if self.invite_t > 1.5:
                self.invite_t = None
        self.pose = pose
        return pose


# -- the group the facilitator sees ----------------------------------------------
def counterfactual_group(session: Session, kind: str, other: Session | None = None) -> np.ndarray:
    """The participants (T, P, J, 3) of a counterfactual.

    ``frozen`` at the held-out start, ``mirrored`` about the facilitator, ``nobody`` in view, or
    ``other`` (another session's group, frame by frame).
    """
    group = np.array(session.participants)
    cut = int(round(len(session) * 0.8))
    if kind == 'frozen':
        group[cut:] = group[cut]
    elif kind == 'mirrored':
        seat = float(session.info['facilitator_seat_u'])
        group = mirrored(group, seat)
    elif kind == 'nobody':
        group[cut:, ..., 2] = 0.0
        group[cut:, ..., :2] = 0.0
    elif kind == 'other':
        if other is None:
            raise ValueError('the other-group counterfactual needs another session')
        theirs = np.array(other.participants)
        n = min(len(theirs), len(group))
        p = min(theirs.shape[1], group.shape[1])
        group[:n, :p] = theirs[:n, :p]
        group[:n, p:, :, 2] = 0.0
    else:
        raise ValueError(
            f'unknown counterfactual {kind!r} (choose from {", ".join(COUNTERFACTUALS)})'
        )
    return group


def rollout(
    facilitator: Facilitator,
    session: Session,
    group: np.ndarray | None = None,
    t0: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, poses)``.

    The facilitator driving itself from frame ``t0`` (held-out start) to the end.
    """
    group = session.participants if group is None else group
    t0 = int(round(len(session) * 0.8)) if t0 is None else t0
    facilitator.start(session, t0)
    poses = []
    for t in range(t0, len(session) - 1):
        frame = GroupFrame(int(session.stamps_ns[t]), session.participant_ids, group[t])
        poses.append(np.array(facilitator.step(frame), np.float64)[:, :2])
    return np.arange(t0 + 1, len(session)), np.stack(poses)


# -- judging one rollout -----------------------------------------------------------
def _gain(y, x):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    var = np.sum((x - x.mean()) ** 2)
    return float(np.dot(x - x.mean(), y - y.mean()) / var) if var > 0 else 0.0


def _corr(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() < 1e-12 or b.std() < 1e-12:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def head_metrics(session: Session, frames: np.ndarray, poses: np.ndarray) -> dict:
    """Correlation, gain, attention accuracy and turn responses of the generated head yaw."""
    fps = session.fps
    truth = np.asarray(session.facilitator[frames, :, :2], np.float64)
    yaw, true_yaw = head_yaw(poses), head_yaw(truth)
    bearing = speaker_bearing(session)[frames]
    target = attention_target(session)[frames]
    # Decode who is faced with the demonstrations' own yaw-bearing line (a fixed decoder for all
    # facilitators).
    slope, offset = (
        _gain(true_yaw, bearing),
        float(true_yaw.mean() - _gain(true_yaw, bearing) * bearing.mean()),
    )
    bearings = seat_bearings(session)
    faced = np.argmin(np.abs((yaw[:, None] - offset) / (slope or 1.0) - bearings[None]), 1)
    known = target >= 0
    turns: list[dict[str, Any]] = []
    curves = []
    changes = np.flatnonzero(np.r_[False, target[1:] != target[:-1]] & (target >= 0))
    span = np.ptp(true_yaw) if len(true_yaw) else 0.0
    for i, c in enumerate(changes):
        end = min(
            c + int(TURN_WINDOW_S * fps),
            changes[i + 1] if i + 1 < len(changes) else len(frames) - 1,
            len(frames) - 1,
        )
        if end <= c:
            continue
        want = true_yaw[end] - true_yaw[c]
        if abs(want) < 0.1 * span or abs(want) < 1e-6:
            continue
        moved = (yaw[c : end + 1] - yaw[c]) * np.sign(want) / abs(want)
        if end - c >= int(TURN_WINDOW_S * fps):
            curves.append(moved[: int(TURN_WINDOW_S * fps)])
        hit = np.flatnonzero(moved >= 0.5)
        wrong = np.flatnonzero(moved <= -0.5)
        latency = hit[0] / fps if len(hit) else None
        turns.append(
            {
                'latency_s': latency,
                'wrong': bool(len(wrong) and (not len(hit) or wrong[0] < hit[0])),
            }
        )
    lat = [t['latency_s'] for t in turns if t['latency_s'] is not None]
    n = max(len(turns), 1)
    return {
        'yaw_bearing_correlation': _corr(yaw, bearing),
        'true_yaw_bearing_correlation': _corr(true_yaw, bearing),
        'turn_gain': _gain(yaw, true_yaw),
        'attention_accuracy': float(np.mean(faced[known] == target[known]))
        if known.any()
        else None,
        'speaker_changes': len(turns),
        'turn_within_1s': sum(x is not None and x <= 1.0 for x in lat) / n,
        'turn_within_3s': sum(x is not None and x <= 3.0 for x in lat) / n,
        'turn_latency_median_s': float(np.median(lat)) if lat else None,
        'turn_wrong_direction': sum(t['wrong'] for t in turns) / n,
        'yaw_std': float(yaw.std()),
        'true_yaw_std': float(true_yaw.std()),
        'faced': faced,
        'turn_response_curve': np.mean(curves, 0).round(4).tolist() if curves else None,
    }


def _rise(poses, t0, t1, wrist):
    """Largest upward move of a wrist over ``[t0, t1)`` from its height at ``t0``.

    Upward: v decreasing.
    """
    v = poses[t0:t1, wrist, 1]
    return float(np.max(v[0] - v)) if len(v) else 0.0


def invitation_metrics(
    session: Session, frames: np.ndarray, poses: np.ndarray, faced: np.ndarray
) -> dict:
    """Hits with a rising wrist, chance at pseudo-onsets, false raises, head on the invitee.

    Hand split.
    """
    fps = session.fps
    truth = np.asarray(session.facilitator[frames, :, :2], np.float64)
    w = int(INVITE_WINDOW_S * fps)
    onsets = [int(np.searchsorted(frames, t)) for t in invitation_onsets(session, frames)]
    onsets = [i for i in onsets if i + w <= len(frames)]
    lifts = [_rise(truth, i, i + w, WRISTS[int(session.invite_hand[frames[i]])]) for i in onsets]
    reference = float(np.median(lifts)) if lifts else None
    hits, hands, on_invitee, curves = [], [], [], []
    for i, lift in zip(onsets, lifts):
        rises = [_rise(poses, i, i + w, wr) for wr in WRISTS]
        up = poses[i, list(WRISTS), 1][None] - poses[i : i + w, list(WRISTS), 1]
        curves.append((up.max(1) / max(lift, 1e-9)).round(4))
        hit = max(rises) >= 0.5 * lift
        hits.append(hit)
        if hit:
            hands.append(int(np.argmax(rises)))
        k = min(i + int(HEAD_ON_INVITEE_S * fps), len(frames) - 1)
        on_invitee.append(bool(faced[k] == session.invite[frames[i]]))
    # Outside invitations: pseudo-onsets (chance) and raises that nobody asked for.
    inside = np.zeros(len(frames), bool)
    for i in onsets:
        inside[max(0, i - int(0.3 * fps)) : i + int(3.0 * fps)] = True
    for t in invitation_onsets(
        session, np.arange(len(session))
    ):  # also those cut off at the edges
        i = int(np.searchsorted(frames, t))
        inside[max(0, i - int(0.3 * fps)) : max(0, i + int(3.0 * fps))] = True
    chance, false_raises = [], 0
    if reference:
        for i in range(0, len(frames) - w, w):
            if not inside[i : i + w].any():
                chance.append(max(_rise(poses, i, i + w, wr) for wr in WRISTS) >= 0.5 * reference)
        rest = poses[0, list(WRISTS), 1]
        raised = ((rest[None] - poses[:, list(WRISTS), 1]) >= 0.5 * reference).any(1) & ~inside
        false_raises = int(np.sum(raised[1:] & ~raised[:-1]) + raised[0])
    minutes = max((~inside).sum() / fps / 60.0, 1e-9)
    return {
        'onsets': len(onsets),
        'hits': float(np.mean(hits)) if hits else None,
        'chance': float(np.mean(chance)) if chance else None,
        'false_raises_per_min': false_raises / minutes if reference else None,
        'head_on_invitee': float(np.mean(on_invitee)) if on_invitee else None,
        'left_share': hands.count(0) / len(hands) if hands else None,
        'right_share': hands.count(1) / len(hands) if hands else None,
        'lift_curve': np.mean(curves, 0).round(4).tolist() if curves else None,
    }


def motion_features(poses: np.ndarray, window: int = 15, stride: int = 3) -> np.ndarray:
    """Windows of joint positions relative to the shoulders' midpoint and their velocities.

    One row each.
    """
    poses = np.asarray(poses, np.float64)
    ls = poses[:, LEFT_SHOULDER]
    mid = ls + 0.5 * pose_delta(ls, poses[:, RIGHT_SHOULDER])
    rel = pose_delta(mid[:, None], poses)
    vel = np.concatenate([np.zeros_like(rel[:1]), rel[1:] - rel[:-1]])
    feats = np.concatenate([rel, vel], -1).reshape(len(poses), -1)
    rows = [
        feats[i : i + window : stride].reshape(-1)
        for i in range(0, len(poses) - window + 1, stride)
    ]
    return (
        np.stack(rows) if rows else np.zeros((0, feats.shape[1] * len(range(0, window, stride))))
    )


def frechet_distance(a: np.ndarray, b: np.ndarray, dims: int = 24) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` and ``b``.

    In the true data's top PCA axes.
    """
    mean, std = b.mean(0), b.std(0) + 1e-9
    za, zb = (a - mean) / std, (b - mean) / std
    _, _, vt = np.linalg.svd(zb - zb.mean(0), full_matrices=False)
    basis = vt[:dims].T
    pa, pb = za @ basis, zb @ basis
    ma, mb = pa.mean(0), pb.mean(0)
    ca, cb = np.cov(pa, rowvar=False), np.cov(pb, rowvar=False)
    # trace(sqrtm(ca cb)): the product of two covariances has real, non-negative eigenvalues.
    root = np.sqrt(np.clip(np.linalg.eigvals(ca @ cb).real, 0.0, None)).sum()
    return float(np.sum((ma - mb) ** 2) + np.trace(ca) + np.trace(cb) - 2 * root)


def judge(session: Session, frames: np.ndarray, poses: np.ndarray) -> dict:
    """Every per-rollout metric of one facilitator on one session."""
    head = head_metrics(session, frames, poses)
    faced = head.pop('faced')
    truth = np.asarray(session.facilitator[frames, :, :2], np.float64)
    return {
        **head,
        'invitation': invitation_metrics(session, frames, poses, faced),
        'mpjpe': float(joint_distance(poses, truth).mean()),
    }


def judge_published(session: Session, stamps_ns: np.ndarray, poses: np.ndarray) -> dict:
    """The social metrics of what a live graph published.

    At each session frame the newest pose stamped at or before it (what the robot showed then),
    over the frames the poses cover; the demonstration beside it.
    """
    order = np.argsort(stamps_ns)
    stamps_ns, poses = stamps_ns[order], np.asarray(poses, np.float64)[order]
    frames = np.flatnonzero(
        (session.stamps_ns >= stamps_ns[0]) & (session.stamps_ns <= stamps_ns[-1])
    )
    if len(frames) < 2:
        return {'skipped': 'the published poses cover less than two session frames'}
    rows = np.searchsorted(stamps_ns, session.stamps_ns[frames], side='right') - 1
    truth = np.asarray(session.facilitator[frames, :, :2], np.float64)
    return {
        'frames': int(len(frames)),
        'published': judge(session, frames, poses[rows]),
        'truth': judge(session, frames, truth),
    }


# -- the whole evaluation -------------------------------------------------------------
def evaluate_social(
    policy,
    sessions: list[Session],
    names: list[str] | None = None,
    train_sessions: list[Session] | None = None,
    plans: int = 4,
    sampler: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    counterfactuals: bool = True,
    progress: bool = True,
) -> dict:
    """The social block: per session and style, for the policy and the baselines, in one run.

    ``train_sessions`` calibrate the rule facilitator (default: the training
    parts of ``sessions`` themselves).
    """
    import torch

    labelled = [i for i, s in enumerate(sessions) if has_social_labels(s)]
    if not labelled:
        return {'skipped': 'no session knows its speakers and seats (simulated sessions do)'}
    calibration = calibrate_rule(train_sessions or [sessions[i] for i in labelled])
    drivers = [
        PolicyFacilitator(policy, plans, sampler, steps),
        TruthFacilitator(),
        TruthFacilitator(LATE_TRUTH_S),
        HoldFacilitator(),
        VelocityFacilitator(),
        RuleFacilitator(calibration),
    ]
    # (row, group, facilitator): each counterfactual group for the policy, and nobody in view
    # for the network alone.
    counterfactual_runs = [(kind, kind, drivers[0]) for kind in COUNTERFACTUALS] + [
        (UNGUARDED, 'nobody', PolicyFacilitator(policy, plans, sampler, steps, idle_alone=False))
    ]
    report: dict[str, Any] = {
        'setup': {
            'plans': plans,
            'replan_frames': 1,
            'held_out': 'last 20 % of each session',
            'rule_yaw_per_bearing': calibration.yaw_per_bearing,
        },
        'sessions': [],
    }
    generated: dict[str, list[np.ndarray]] = {d.name: [] for d in drivers}
    true_feats, traced, traces = [], {}, {}
    bar = tqdm(labelled, desc='social', unit='session', disable=not progress)
    for i in bar:
        session = sessions[i]
        entry = {
            'name': names[i] if names else f'session{i}',
            'style': session.info.get('style', ''),
        }
        for d in drivers:
            torch.manual_seed(seed + i)
            frames, poses = rollout(d, session)
            traces[d.name] = poses
            entry[d.name] = judge(session, frames, poses)
            generated[d.name].append(motion_features(poses))
            if d is drivers[0]:
                policy_poses = poses
                if d.spreads:
                    entry[d.name]['plan_diversity'] = float(np.mean(d.spreads))
        true_feats.append(
            motion_features(np.asarray(session.facilitator[frames, :, :2], np.float64))
        )
        if entry['style'] not in traced:
            traced[entry['style']] = True
            entry['trace'] = {
                'fps': session.fps,
                'bearing': speaker_bearing(session)[frames].round(4).tolist(),
                'truth': head_yaw(session.facilitator[frames]).round(5).tolist(),
                **{name: head_yaw(p).round(5).tolist() for name, p in traces.items()},
            }
        if counterfactuals:
            torch.manual_seed(seed + i + 10_000)
            _, resampled = rollout(drivers[0], session)
            cf: dict[str, Any] = {
                'resampling_floor_mpjpe': float(joint_distance(resampled, policy_poses).mean())
            }
            others = [s for j, s in enumerate(sessions) if j != i and has_social_labels(s)]
            for name, kind, driver in counterfactual_runs:
                if kind == 'other' and not others:
                    continue
                torch.manual_seed(seed + i)
                group = counterfactual_group(session, kind, others[0] if others else None)
                _, poses = rollout(driver, session, group)
                head = head_metrics(session, frames, poses)
                cf[name] = {
                    'yaw_bearing_correlation': head['yaw_bearing_correlation'],
                    'yaw_std': head['yaw_std'],
                    'turn_within_3s': head['turn_within_3s'],
                    'mpjpe_to_real_group_rollout': float(
                        joint_distance(poses, policy_poses).mean()
                    ),
                }
            entry['counterfactual'] = cf
        report['sessions'].append(entry)
    truth = np.concatenate(true_feats)
    report['frechet'] = {
        name: frechet_distance(np.concatenate(f), truth)
        for name, f in generated.items()
        if name != 'truth'
    }
    report['summary'] = summarise(report, [d.name for d in drivers])
    return report


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


HEAD_KEYS = (
    'yaw_bearing_correlation',
    'turn_gain',
    'attention_accuracy',
    'turn_within_1s',
    'turn_within_3s',
    'turn_latency_median_s',
    'turn_wrong_direction',
    'mpjpe',
)
INVITE_KEYS = (
    'hits',
    'chance',
    'false_raises_per_min',
    'head_on_invitee',
    'left_share',
    'right_share',
)


def summarise(report: dict, names: list[str]) -> dict:
    """Means per facilitator over all sessions and per style, and the counterfactual means."""
    out = {}
    styles = sorted({e['style'] for e in report['sessions']})
    for scope in ['all'] + styles:
        entries = [e for e in report['sessions'] if scope == 'all' or e['style'] == scope]
        block = {}
        for name in names:
            block[name] = {k: _mean([e[name][k] for e in entries]) for k in HEAD_KEYS}
            block[name].update(
                {
                    f'invitation_{k}': _mean([e[name]['invitation'][k] for e in entries])
                    for k in INVITE_KEYS
                }
            )
            block[name]['true_yaw_bearing_correlation'] = _mean(
                [e[name]['true_yaw_bearing_correlation'] for e in entries]
            )
            for key, part in (('turn_response_curve', None), ('lift_curve', 'invitation')):
                rows = [(e[name][part] if part else e[name])[key] for e in entries]
                rows = [r for r in rows if r is not None]
                block[name][key] = np.mean(rows, 0).round(4).tolist() if rows else None
        cfs = [e['counterfactual'] for e in entries if 'counterfactual' in e]
        if cfs:
            block['counterfactual'] = {
                'resampling_floor_mpjpe': _mean([c['resampling_floor_mpjpe'] for c in cfs])
            }
            for kind in (*COUNTERFACTUALS, UNGUARDED):
                rows = [c[kind] for c in cfs if kind in c]
                if rows:
                    block['counterfactual'][kind] = {
                        k: _mean([r[k] for r in rows]) for k in rows[0]
                    }
        out[scope] = block
    out['frechet'] = report['frechet']
    return out


ROWS = (
    ('yaw_bearing_correlation', 'head yaw / speaker bearing correlation', 2),
    ('turn_gain', 'turn gain (regression on the true yaw)', 2),
    ('attention_accuracy', 'attends the current target', 2),
    ('turn_within_1s', 'half the true turn within 1 s of a change', 2),
    ('turn_within_3s', 'half the true turn within 3 s', 2),
    ('turn_latency_median_s', 'median turn latency (s)', 2),
    ('turn_wrong_direction', 'turns the wrong way first', 2),
    ('invitation_hits', 'invitation: rising wrist >= 0.5 of the true lift in 2 s', 2),
    ('invitation_chance', 'same test at pseudo-onsets (chance)', 2),
    ('invitation_false_raises_per_min', 'false hand raises per minute', 2),
    ('invitation_head_on_invitee', 'head on the invitee 1 s after the onset', 2),
    ('invitation_left_share', 'left hand share of raised hands', 2),
    ('mpjpe', 'closed-loop MPJPE', 5),
)
FACILITATORS = (
    'truth',
    TruthFacilitator(LATE_TRUTH_S).name,
    'policy',
    'hold',
    'constant_velocity',
    'rule',
)


def markdown(social: dict) -> str:
    """The social block as Markdown.

    One table for all sessions, one per style, and the counterfactuals.
    """
    if 'summary' not in social:
        return f'## Social behaviour (closed loop)\n\n{social.get("skipped", "not run")}\n'
    setup = social['setup']
    lines = [
        '## Social behaviour (closed loop)',
        '',
        f'Each facilitator drives itself over the held-out part of every session '
        f'({setup["plans"]} plans '
        'per frame for the policy, medoid executed, a new plan every frame), '
        'fed the true group and its own '
        'executed poses.',
        '',
    ]
    names = [n for n in FACILITATORS if n in social['summary']['all']]
    f = lambda v, d: '–' if v is None else f'{v:.{d}f}'  # noqa: E731
    for scope, block in social['summary'].items():
        if scope == 'frechet':
            continue
        lines += [
            f'### {scope}',
            '',
            '| | ' + ' | '.join(names) + ' |',
            '|---' * (len(names) + 1) + '|',
        ]
        lines += [
            f'| {label} | ' + ' | '.join(f(block[n].get(key), d) for n in names) + ' |'
            for key, label, d in ROWS
        ]
        cf = block.get('counterfactual')
        if cf:
            lines += [
                '',
                'Counterfactual groups (policy), resampling floor MPJPE '
                f'{f(cf["resampling_floor_mpjpe"], 5)}:',
                '',
                '| group | yaw / true bearing correlation | yaw std | half turn in 3 s '
                '| MPJPE to the real-group '
                'rollout |',
                '|---|---|---|---|---|',
            ]
            for kind in (*COUNTERFACTUALS, UNGUARDED):
                if kind in cf:
                    c = cf[kind]
                    lines.append(
                        f'| {kind} | {f(c["yaw_bearing_correlation"], 2)} | '
                        f'{f(c["yaw_std"], 5)} | '
                        f'{f(c["turn_within_3s"], 2)} | '
                        f'{f(c["mpjpe_to_real_group_rollout"], 5)} |'
                    )
        lines.append('')
    fr = social['summary']['frechet']
    lines += [
        'Fréchet motion distance to the true motion (lower is more like it): '
        + ', '.join(f'{n} {v:.1f}' for n, v in fr.items()),
        '',
    ]
    return '\n'.join(lines)


def plots(social: dict, stem: str) -> list[str]:
    """``<stem>_yaw.png`` (yaw over time with the bearing), ``_turns.png`` and ``_lift.png``.

    The last two are event-aligned.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from social_pose_diffusion.evaluation.report import save_figure

    if 'summary' not in social:
        return []
    paths = []
    traced = [e for e in social['sessions'] if 'trace' in e]
    if traced:
        fig, axes = plt.subplots(len(traced), 1, figsize=(8, 2.2 * len(traced)), squeeze=False)
        for ax, e in zip(axes[:, 0], traced):
            tr = e['trace']
            t = np.arange(len(tr['truth'])) / tr['fps']
            scale = np.std(tr['truth']) / max(np.std(tr['bearing']), 1e-9)
            ax.plot(
                t,
                np.asarray(tr['bearing']) * scale,
                color='0.6',
                lw=1,
                label='speaker bearing (scaled)',
            )
            for name, colour in (('truth', 'k'), ('policy', 'C0'), ('rule', 'C2')):
                ax.plot(t, tr[name], color=colour, lw=1.2, label=name)
            ax.set_title(f'{e["name"]}: head yaw', fontsize=8)
            ax.set_ylabel('yaw (u)')
        axes[0, 0].legend(fontsize=7, ncol=4)
        axes[-1, 0].set_xlabel('held-out time (s)')
        paths.append(save_figure(fig, f'{stem}_yaw.png'))
    block = social['summary']['all']
    for key, title, path, seconds in (
        (
            'turn_response_curve',
            'turn after a change of speaker (1 = the true turn)',
            f'{stem}_turns.png',
            TURN_WINDOW_S,
        ),
        (
            'lift_curve',
            'wrist rise after an invitation onset (1 = the true lift)',
            f'{stem}_lift.png',
            INVITE_WINDOW_S,
        ),
    ):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for name in FACILITATORS:
            curve = block.get(name, {}).get(key)
            if curve:
                ax.plot(np.arange(len(curve)) * seconds / len(curve), curve, label=name)
        ax.axhline(0.5, color='0.7', lw=0.8, ls='--')
        ax.set_xlabel('seconds after the event')
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        paths.append(save_figure(fig, path))
    return paths
