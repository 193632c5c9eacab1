"""The policy families, one class each: their training loss and how they generate action chunks.

``diffusion`` (DDPM epsilon-prediction) and ``flow`` (flow matching) are
generative: they denoise a noisy chunk with one of their samplers; ``bc``
(MSE behaviour cloning) and ``dbc`` (BC plus a diffusion critic's penalty,
trained in :mod:`social_pose_diffusion.learning.train`) regress one chunk.
Everything else asks :data:`FAMILIES` instead of comparing names.
"""

import torch

from social_pose_diffusion.policy.objectives import bc_loss, diffusion_loss, flow_loss
from social_pose_diffusion.policy.samplers import SAMPLERS, Run, Sampler


class Family:
    """What every family has: a name, two flags and its samplers (from :data:`SAMPLERS`)."""

    name = ''
    generative = False  # the network denoises (inputs a noisy chunk and a time)
    critic = False  # training needs DBC's state-action critic

    @property
    def samplers(self) -> tuple:
        """Names of the samplers of this family, the default first."""
        return tuple(name for name, s in SAMPLERS.items() if self.name in s.families)

    def sampler(self, name: str) -> Sampler:
        """The sampler ``name``; a ValueError names the ones this family has."""
        if name not in self.samplers:
            raise ValueError(
                f'a {self.name} policy samples with {", ".join(self.samplers)}, not {name!r}'
            )
        return SAMPLERS[name]


class Diffusion(Family):
    """DDPM epsilon-prediction on integer steps 1..T, given to the network as t / T."""

    name = 'diffusion'
    generative = True

    def time(self, policy, t):
        return t.float() / policy.config.timesteps

    def loss(self, policy, cond, actions, generator=None, weight=None):
        """The training loss on normalised action chunks (B, H, A) given conditioning tokens."""
        return diffusion_loss(
            lambda x, t: policy.net(cond, x, self.time(policy, t)),
            actions,
            policy.schedule,
            generator,
            weight,
        )

    def generate(self, policy, cond, k: int, sampler: Sampler, run: Run, uncond=None):
        """Normalised action chunks (B * k, H, A): k per observation's conditioning tokens.

        With ``uncond`` every evaluation is guided (:meth:`Policy.guided`).
        """
        c = policy.config
        cond = cond.repeat_interleave(k, 0)
        shape = (cond.shape[0], c.horizon, c.action_dim)
        x = c.noise_scale * torch.randn(shape, generator=run.generator, device=cond.device)
        if uncond is not None:
            uncond = uncond.repeat_interleave(k, 0)
            return sampler.run(
                lambda y, t: policy.guided(cond, uncond, y, self.time(policy, t)), x, run
            )
        return sampler.run(lambda y, t: policy.denoise(cond, y, self.time(policy, t)), x, run)


class Flow(Diffusion):
    """Flow matching; the network sees tau in [0, 1] itself."""

    name = 'flow'

    def time(self, policy, tau):
        return tau

    def loss(self, policy, cond, actions, generator=None, weight=None):
        return flow_loss(lambda x, tau: policy.net(cond, x, tau), actions, generator, weight)


class BC(Family):
    """MSE behaviour cloning: learned queries, one evaluation per observation."""

    name = 'bc'

    def loss(self, policy, cond, actions, generator=None, weight=None):
        return bc_loss(policy.net(cond), actions, weight)

    def generate(self, policy, cond, k, sampler, run, uncond=None):
        def once(x, t):
            policy.evaluations += 1
            return policy.net(cond)

        return sampler.run(once, None, run).repeat_interleave(k, 0)


class DBC(BC):
    """Diffusion behaviour cloning: BC whose training adds a diffusion critic's penalty."""

    name = 'dbc'
    critic = True


FAMILIES = {f.name: f for f in (Diffusion(), Flow(), BC(), DBC())}
