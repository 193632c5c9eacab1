"""A policy served live, without ROS: the policy node's model, agent and planning step.

The node is ROS glue around a :class:`PolicyServer`. Configure loads a model
(the packaged default when none is named) and checks the agent options that
depend on it; activate builds the agent, warms it up and drives it through a
:class:`~.follower.Controller`; then the planner thread plans each observation
with the options of the moment and the control loop asks what to execute now.
Problems go to ``report(kind, text, level)``, which the node rate-limits per kind
(kind None: the server limits it).
"""

import time
from collections.abc import Callable
from typing import Any

from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.resources import default_model
from social_pose_diffusion.msgs.images import message_to_bgr
from social_pose_diffusion.planning.agent import FacilitatorAgent, known_style
from social_pose_diffusion.planning.follower import Controller, Tick

MODEL_OPTIONS = ('sampler', 'style')  # the agent options a model may lack


def option_problem(config: Any, name: str, value: Any) -> str | None:
    """Why a model (``config``) cannot take agent option ``name`` = ``value``, or None.

    The sampler must be one of its family's, the style one it was trained on; an empty value
    asks for the model's default, and other options fit every model.
    """
    try:
        if name == 'sampler' and value:
            config.family.sampler(value)
        elif name == 'style':
            known_style(config.styles, value or None)
    except ValueError as exc:
        return str(exc)
    return None


class PolicyServer:
    """A loaded model and the :class:`~.follower.Controller` driving its agent.

    ``start_pose(agent)`` gives an episode's first pose, or None while it is unknown.
    """

    def __init__(self, start_pose: Callable, report: Callable[[str | None, str, str], None]):
        self.policy: Any = None
        self.control = Controller(start_pose)
        self._report = report

    def load(self, model_path: str = '', device: str = 'auto', threads: int = 0, **options) -> str:
        """Load a model that can take agent ``options``; a line saying what was loaded.

        ``model_path`` '' is the packaged default; ``threads`` > 0 sets torch's intra-op
        threads first. A missing, corrupt or mismatched model raises ModelError, one lacking
        an option a ValueError naming it: either way no model stays loaded.
        """
        from social_pose_diffusion.policy import load_policy

        self.policy, path = None, model_path or str(default_model())
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        start = time.perf_counter()
        policy = load_policy(path, device=device)
        for name, value in options.items():
            if reason := option_problem(policy.config, name, value):
                raise ValueError(f'{name}: {reason}')
        self.policy, c = policy, policy.config
        return (
            f'loaded {path}: {c.policy}/{c.sampler} {c.encoder} encoder, '
            f'horizon {c.horizon}, on {policy.device} in {time.perf_counter() - start:.2f} s'
        )

    def problem(self, name: str, value: Any) -> str | None:
        """Why the loaded model cannot take agent option ``name`` = ``value`` (None: no model)."""
        return None if self.policy is None else option_problem(self.policy.config, name, value)

    @property
    def needs_camera(self) -> bool:
        """The model observes camera frames: plans wait for one."""
        return self.policy is not None and self.policy.config.encoder_spec.needs_camera

    def start(self, period_ns: float) -> float:
        """Drive a new agent with a control period of ``period_ns``; its warm-up's seconds."""
        agent = FacilitatorAgent(self.policy, fps=self.policy.config.fps)
        took = agent.warm_up()
        self.control.start(agent, period_ns)
        return took

    def stop(self) -> None:
        """Stop driving the agent; its memory on a GPU goes back to other processes."""
        self.control.stop()
        if self.policy is not None and self.policy.device.type == 'cuda':
            import torch

            torch.cuda.empty_cache()

    def observed(self, stamp_ns: int) -> None:
        """Note an observation's stamp; one earlier than the last restarts the episode."""
        back = self.control.observed(stamp_ns)
        if back:  # a looping bag or a restarted driver: the state belongs to another timeline
            self._jumped('jump', 'observation time', back)

    def plan(
        self,
        frame: GroupFrame,
        arrival_ns: int,
        max_offset_ns: float,
        camera=None,
        observed=None,
        **options,
    ) -> tuple[float, bool] | None:
        """Plan from ``frame`` with agent ``options`` (:meth:`FacilitatorAgent.configure`).

        ``camera`` is the newest camera message (decoded only for a model observing frames),
        ``observed`` the facilitator pose the camera sees (for re-anchoring). ``(seconds,
        whether the plan is followed)``, False for a non-finite one; None when nothing was
        planned (no start pose or camera frame yet, stopped or reset meanwhile).
        """
        agent, image = self.control.agent, None
        if agent is None:
            return None
        agent.configure(**options)
        if self.needs_camera:
            if camera is None:
                self._report(
                    'image', 'waiting for a camera frame: the policy sees them', 'warning'
                )
                return None
            image = message_to_bgr(camera)
        began = time.perf_counter()
        status = self.control.plan(
            frame, arrival_ns, max_offset_ns, image=image, observed=observed
        )
        if status in ('waiting', 'stale'):
            return None
        took = time.perf_counter() - began
        if status == 'refused':
            self._report(
                'finite', 'refused a non-finite plan: holding the last good pose', 'error'
            )
        elif status == 'by arrival':  # once per episode: not rate-limited
            self._report(
                None,
                f'observation stamps are {(arrival_ns - frame.stamp_ns) * 1e-9:.1f} s from the '
                'node clock; timing plans by arrival (use_sim_time for bags?)',
                'warning',
            )
        return took, status != 'refused'

    def tick(self, now_ns: int, early: bool = False) -> Tick | None:
        """What to execute at ``now_ns`` (:meth:`~.follower.Controller.tick`)."""
        tick, back = self.control.tick(now_ns, early)
        if back:
            self._jumped('clock', 'node clock', back)
        return tick

    def _jumped(self, kind: str, what: str, back: float) -> None:
        self._report(
            kind, f'{what} jumped back by {back:.3f} s; resetting the facilitator state', 'warning'
        )
