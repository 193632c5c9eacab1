"""The facilitator agent: group frames in, timestamped absolute pose plans out (no ROS).

It keeps the recent group frames (for participant motion), the facilitator's
executed poses (its proprioception) and an :class:`Integrator` with the
facilitator's bone lengths. The ROS policy node and the offline rollouts of
:mod:`.evaluate` both use it.
"""

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.skeleton import (
    NUM_JOINTS,
    apply_delta,
    joint_distance,
    mirrored,
    mirrored_deltas,
    pose_delta,
    wrap_u,
)
from social_pose_diffusion.observation.features import (
    arm_speed,
    centroid,
    group_tokens,
    memory_step,
    pad_people,
    proprioception,
    with_style,
)
from social_pose_diffusion.planning.follower import interpolate
from social_pose_diffusion.planning.integrator import Integrator
from social_pose_diffusion.planning.seat import SeatAnchor, check_return_s

HOME_PULL = 0.3  # per second: a rest posture that bounds the drift of open-loop rollouts
SEAT_RETURN_S = 0.5  # executed shoulders come back to the seat with this time constant
SNAP_NS = 1e6  # a frame time this close to a commit takes that commit's pose exactly


@dataclass
class Plan:
    """``poses[i]`` (J, 2) is the facilitator's planned pose at ``stamps_ns[i]``.

    ``spread`` (H, J) its uncertainty.
    """

    stamps_ns: np.ndarray
    poses: np.ndarray
    spread: np.ndarray
    samples: np.ndarray  # (k, H, J, 2) every sampled plan, integrated


def seated(pose: ArrayLike, seat_u: float) -> np.ndarray:
    """``pose`` (J, 2|3) turned about the camera's vertical axis so its centroid is at ``seat_u``.

    A shift in u is a rotation of the sphere: the bone lengths stay the same.
    """
    pose = np.array(pose, np.float64)[:, :2]
    pose[:, 0] = (pose[:, 0] + wrap_u(seat_u - centroid(pose)[0])) % 1.0
    return pose


def known_style(styles: Sequence[str], style: str | None) -> str | None:
    """``style`` when the model was trained on it; None asks for its default behaviour.

    A ValueError names the styles the model knows.
    """
    if style is not None and style not in styles:
        raise ValueError(
            f'style {style!r} is not one the model knows ({", ".join(styles) or "none"})'
        )
    return style


def joint_spread(samples: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Per-joint RMS distance (H, J) of ``samples`` (k, H, J, 2) from ``centre`` (H, J, 2).

    0 for one sample.
    """
    return np.sqrt(np.mean(joint_distance(samples, centre[None]) ** 2, 0))


def medoid_index(samples: np.ndarray) -> np.ndarray:
    """Index (...) of the sample with the least total distance to the others.

    ``samples``: (..., k, H, J, 2).
    """
    d = joint_distance(samples[..., :, None, :, :, :], samples[..., None, :, :, :, :]).mean(
        (-1, -2)
    )
    return np.argmin(d.sum(-1), -1)


def medoid(samples: np.ndarray) -> np.ndarray:
    """The sample (k, H, J, 2) -> (H, J, 2) with the least total distance to the others."""
    return samples[int(medoid_index(samples))]


class FacilitatorAgent:
    """Plans the facilitator's next ``H`` poses with a :class:`~.policy.Policy`.

    ``samples`` > 1 draws that many plans and returns their medoid (a real
    mode, never an average of modes) with the per-joint spread. ``reanchor``
    in [0, 1] pulls the current pose toward an observed facilitator pose when
    :meth:`plan` receives one; ``home_pull`` (per second) pulls every planned
    step toward the pose given to :meth:`reset`, bounding open-loop drift;
    ``seat_return_s`` is how fast the executed shoulders come back to the
    reset pose's (:mod:`~.seat`; 0: not at all).
    ``style`` (one of the model's ``config.styles``; None: its default
    behaviour) asks a style-conditioned model for that facilitator.
    ``idle_alone`` holds the pose (no plan sampled) while nobody is in view:
    there is nobody to respond to, and a perception dropout must not set the
    facilitator wandering on its own motion. Every option but ``fps`` and
    ``home_pull`` is :meth:`configure`'s.
    """

    def __init__(self, policy, fps=30.0, home_pull=HOME_PULL, **options):
        self.policy, self.fps = policy, float(fps)
        self.configure(**options)
        self.leak = float(home_pull) / self.fps
        c = policy.config
        self.max_speed = np.asarray(c.max_speed, np.float64)
        self.neutral = np.asarray(c.neutral_pose, np.float64)
        self._frames = deque(maxlen=max(c.lags) + 2 * int(round(self.fps)))
        self.idle_plans = 0  # plans held with nobody in view, over the agent's life
        self.reset()

    def configure(
        self,
        samples=1,
        sampler=None,
        steps=None,
        reanchor=0.0,
        style=None,
        seat_return_s=SEAT_RETURN_S,
        symmetric=True,
        idle_alone=True,
    ) -> None:
        """The sampling options, the style of the next plans and the seat's return time.

        A live node changes them. ``symmetric`` draws half the plans (an odd one more:
        the scene as seen) for the mirrored scene (:meth:`_sample`).
        """
        if samples < 1:
            raise ValueError('samples must be >= 1')
        self.samples, self.sampler, self.steps = int(samples), sampler, steps
        self.symmetric = bool(symmetric)
        self.idle_alone = bool(idle_alone)
        self.reanchor_weight = float(reanchor)
        self.style = known_style(self.policy.config.styles, style)
        self.seat_return_s = check_return_s(seat_return_s)

    def reset(self, initial_pose: ArrayLike | None = None) -> None:
        """Forget history.

        Start from ``initial_pose`` (J, 2|3) and its bone lengths, or the model's neutral pose.
        """
        pose = (
            self.neutral if initial_pose is None else np.asarray(initial_pose, np.float64)[:, :2]
        )
        if pose.shape != (NUM_JOINTS, 2) or not np.isfinite(pose).all():
            raise ValueError(f'initial pose must be a finite ({NUM_JOINTS}, 2|3) array')
        self.integrator = Integrator.for_model(pose, self.policy.config, self.leak, self.max_speed)
        pose = self.integrator.start(pose)
        self._rest = pose.copy()  # the executed pose at every time before the first commit
        self.seat = SeatAnchor(pose)
        self._last_plan: tuple[np.ndarray, np.ndarray] | None = None
        self._stamps: deque[int] = deque()
        self._executed: deque[np.ndarray] = deque()
        self._frames.clear()
        self._memory: dict[
            int, np.ndarray
        ] = {}  # person id -> motion memory (M,), see observation.features

    def start_episode_at(self, pose: ArrayLike) -> None:
        """The episode starts at ``pose`` (J, 2|3) after a history was committed.

        The seat and the integrator's home are that pose, as a node's are the pose its
        episode starts in (not the oldest history pose's).
        """
        pose = self.integrator.start(np.asarray(pose, np.float64)[:, :2])
        self.seat = SeatAnchor(pose)
        self.integrator.rehome(pose)

    @property
    def pose(self) -> np.ndarray:
        """The last executed pose (J, 2)."""
        return self._executed[-1] if self._executed else self._rest

    def commit(self, stamp_ns: int, pose: ArrayLike) -> None:
        """Record the pose executed at ``stamp_ns`` (the proprioception of the next plans).

        Commits may come at any rate (a control loop, publish-on-plan ticks):
        :meth:`history` samples them at the model's frame times.
        """
        if self._stamps and stamp_ns <= self._stamps[-1]:
            if stamp_ns < self._stamps[-1]:
                raise ValueError(
                    f'commit stamps must not go back: {stamp_ns} after {self._stamps[-1]}'
                )
            self._stamps.pop()  # a second pose at the same time replaces the first
            self._executed.pop()
        self._stamps.append(int(stamp_ns))
        self._executed.append(np.asarray(pose, np.float64)[:, :2].copy())
        # Keep one commit at or before the oldest time history() samples, for interpolation.
        oldest = self._stamps[-1] - self.policy.config.history * 1e9 / self.fps - SNAP_NS
        while len(self._stamps) > 1 and self._stamps[1] <= oldest:
            self._stamps.popleft()
            self._executed.popleft()

    def anchored(self, stamp_ns: int, pose: ArrayLike) -> np.ndarray:
        """The pose to execute at ``stamp_ns`` for the integrated ``pose`` (see :mod:`~.seat`).

        Call it once per executed pose, in time order; commit the integrated pose. A shift
        in v is not a rotation of the sphere, so the shifted pose is put back on its bones.
        """
        shifted = self.seat(stamp_ns, pose, self.seat_return_s)
        return self.integrator.settle(shifted) if self.seat.drift.any() else shifted

    def execute(self, stamp_ns: int, pose: ArrayLike) -> np.ndarray:
        """Commit the integrated ``pose`` at ``stamp_ns``; the pose executed (:meth:`anchored`)."""
        self.commit(stamp_ns, pose)
        return self.anchored(stamp_ns, pose)

    def history(self) -> np.ndarray:
        """The executed poses (K+1, J, 2) at the model's frame times up to the newest commit.

        Interpolated between commits; before the first commit, the reset pose.
        One commit per model frame gives exactly the committed poses.
        """
        k = self.policy.config.history
        if not self._stamps:
            return np.repeat(self._rest[None], k + 1, 0)
        # Relative to the newest commit: float64 cannot hold nanosecond epoch stamps exactly.
        stamps = (np.asarray(self._stamps, np.int64) - self._stamps[-1]).astype(np.float64)
        executed = np.stack(self._executed)
        out = []
        for j in range(k, -1, -1):
            t = -j * 1e9 / self.fps
            before = t < stamps[0] - SNAP_NS
            out.append(self._rest if before else interpolate(stamps, executed, t, SNAP_NS))
        return np.stack(out)

    def observe(self, frame: GroupFrame) -> None:
        """Remember a group frame (plan() does this too) and update the people's motion memory."""
        if self._frames and frame.stamp_ns <= self._frames[-1].stamp_ns:
            return
        memory_s = self.policy.config.memory_s
        if memory_s:
            previous = self._frames[-1] if self._frames else None
            dt = (
                (frame.stamp_ns - previous.stamp_ns) * 1e-9
                if previous is not None
                else 1.0 / self.fps
            )
            for pid, kp in zip(frame.ids, frame.keypoints):
                before = previous.person(pid) if previous is not None else None
                speed = arm_speed(before, kp, dt) if before is not None else 0.0
                self._memory[int(pid)] = memory_step(
                    self._memory.get(int(pid), np.zeros(len(memory_s))), speed, dt, memory_s
                )
        self._frames.append(frame)

    def _lagged(self, frame, lag):
        """The same people ``lag`` frames earlier (confidence 0 where unseen)."""
        target = frame.stamp_ns - (lag - 0.5) * 1e9 / self.fps
        past = next((f for f in reversed(self._frames) if f.stamp_ns <= target), self._frames[0])
        out = np.zeros_like(frame.keypoints)
        for n, pid in enumerate(frame.ids):
            kp = past.person(pid)
            if kp is not None:
                out[n] = kp
        return out

    def observation(self, frame: GroupFrame, image: np.ndarray | None = None) -> dict:
        """The policy's observation batch (size 1) for ``frame`` and the current history."""
        return self._encode(*self._scene(frame), image)

    def _scene(
        self, frame: GroupFrame
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray, np.ndarray | None]:
        """What the observation is made of: the people now and lagged, pose, history, memory."""
        c = self.policy.config
        self.observe(frame)
        now = np.asarray(frame.keypoints, np.float64).reshape(-1, NUM_JOINTS, 3)
        memory = None
        if c.memory_s:
            memory = np.zeros((len(frame.ids), len(c.memory_s)))  # nobody seen yet: no motion
            for n, pid in enumerate(frame.ids):
                memory[n] = self._memory.get(int(pid), 0.0)
        lagged = [self._lagged(frame, lag) for lag in c.lags]
        return now, lagged, self.pose, self.history(), memory

    def _encode(self, now, lagged, pose, history, memory, image) -> dict:
        """The observation batch (size 1) of a :meth:`_scene`."""
        c = self.policy.config
        tokens, mask = group_tokens(now, lagged, pose, memory)
        tokens, mask = pad_people(tokens, mask, c.max_people)
        proprio = with_style(proprioception(history), c.styles, self.style)
        obs = {'proprio': proprio[None], 'tokens': tokens[None], 'mask': mask[None]}
        picture = c.encoder_spec.image(now, pose, image)
        if picture is not None:
            obs['image'] = picture[None]
        return obs

    def _sample(self, frame: GroupFrame, image: np.ndarray | None) -> np.ndarray:
        """The plans' deltas (k, H, J, 2) for ``frame``.

        ``symmetric``: half of them are sampled for the scene seen in a mirror (everyone,
        the facilitator too) and mirrored back, so the plans the medoid is chosen from
        cannot favour a side (a hand, a turn) that the left-right symmetric training
        data does not.
        """
        now, lagged, pose, history, memory = self._scene(frame)
        obs = self._encode(now, lagged, pose, history, memory, image)
        if not self.symmetric or self.samples < 2:
            return self.policy.sample(obs, self.samples, self.sampler, self.steps)[0]
        twin = self._encode(
            mirrored(now),
            [mirrored(x) for x in lagged],
            mirrored(pose),
            mirrored(history),
            memory,
            None if image is None else np.ascontiguousarray(image[:, ::-1]),
        )
        both = {key: np.concatenate([obs[key], twin[key]]) for key in obs}
        seen = (self.samples + 1) // 2
        drawn = self.policy.sample(both, seen, self.sampler, self.steps)
        return np.concatenate([drawn[0], mirrored_deltas(drawn[1][: self.samples - seen])])

    def warm_up(self) -> float:
        """Seconds of a plan for nobody in view (a black frame for a camera-observing policy).

        The first inference pays for allocations and kernel selection: a live agent makes it
        before its first observation (and is reset when its episode starts).
        """
        camera = self.policy.config.encoder_spec.needs_camera
        start = time.perf_counter()
        self._sample(GroupFrame(0), np.zeros((480, 960, 3), np.uint8) if camera else None)
        return time.perf_counter() - start

    def plan(
        self,
        frame: GroupFrame,
        image: np.ndarray | None = None,
        observed: ArrayLike | None = None,
    ) -> Plan:
        """A :class:`Plan` of the next ``H`` poses from ``frame.stamp_ns``.

        ``observed`` (J, 2|3) re-anchors. With ``idle_alone`` and nobody in ``frame``, every
        plan holds the pose (zero deltas; the home pull still applies).
        """
        if observed is not None and self.reanchor_weight > 0:
            pose = self.integrator.reanchor(
                self.pose, np.asarray(observed)[:, :2], self.reanchor_weight
            )
            if self._executed:
                self._executed[-1] = pose
            else:
                self._rest = pose
        if self.idle_alone and not frame.anyone:
            self.observe(frame)
            self.idle_plans += 1
            deltas = np.zeros((self.samples, self.policy.config.horizon, NUM_JOINTS, 2))
        else:
            deltas = self._sample(frame, image)
        poses = self.integrator.rollout(
            np.broadcast_to(self.pose, (len(deltas), NUM_JOINTS, 2)), deltas
        )
        centre = medoid(poses) if len(poses) > 1 else poses[0]
        stamps = frame.stamp_ns + np.round(np.arange(1, len(centre) + 1) * 1e9 / self.fps).astype(
            np.int64
        )
        centre = self._ensembled(stamps, centre)
        self._last_plan = (stamps, centre)
        return Plan(stamps, centre, joint_spread(poses, centre), poses)

    def _ensembled(self, stamps: np.ndarray, poses: np.ndarray) -> np.ndarray:
        """``poses`` blended with the previous plan where it still reaches (temporal ensembling).

        Each new plan moves the overlap ``plan_weight`` of the way toward itself, so
        the executed motion is an exponentially weighted average of every plan made
        for that moment: one sample's jitter no longer reaches the joints, and a
        change of mind still shows within a few frames.
        """
        weight = self.policy.config.plan_weight
        if weight >= 1.0 or self._last_plan is None:
            return poses
        before, previous = self._last_plan
        out = poses.copy()
        # Relative to the new plan's start: float64 cannot hold nanosecond epoch stamps exactly.
        base = stamps[0]
        old = (before - base).astype(np.float64)
        for i, t in enumerate(stamps - base):
            if t > old[-1] + SNAP_NS:
                break
            then = interpolate(old, previous, float(t), SNAP_NS)
            out[i] = apply_delta(poses[i], (1.0 - weight) * pose_delta(poses[i], then))
        return self.integrator.settle(out)
