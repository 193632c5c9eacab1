"""Noise schedule, samplers over a denoiser closure, and the registry :data:`SAMPLERS`.

``eps(x, t)`` predicts the noise at integer step ``t`` in 1..T (DDPM
epsilon-prediction); ``velocity(x, tau)`` is a flow-matching field with
``x_tau = tau * noise + (1 - tau) * data``, integrated from tau = 1 (noise)
to 0 (data). A new sampler is one function here plus one :data:`SAMPLERS`
entry naming the policy families it serves.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch


class Schedule:
    """Linear beta schedule over ``T`` steps (index ``t - 1`` holds step t)."""

    def __init__(self, timesteps=50, beta_start=1e-4, beta_end=0.02):
        self.T = timesteps
        self.beta = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        self.alpha = 1.0 - self.beta
        self.alpha_bar = torch.cumprod(self.alpha, 0)

    def noised(self, x0, t, noise):
        """``x_t`` for integer steps ``t`` (B,) in 1..T."""
        ab = self.alpha_bar.to(x0.device)[t - 1].float().view(-1, *([1] * (x0.dim() - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def _reverse(self, x, e, t):
        """The DDPM posterior mean from ``x_t`` and predicted noise (no noise added)."""
        return (
            x - self.beta[t - 1].item() / (1 - self.alpha_bar[t - 1].item()) ** 0.5 * e
        ) / self.alpha[t - 1].item() ** 0.5


def _steps(b, t, device):
    return torch.full((b,), t, device=device, dtype=torch.long)


def ddpm(
    eps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Ancestral DDPM from ``x = x_T``: T evaluations."""
    for t in range(schedule.T, 0, -1):
        x = schedule._reverse(x, eps(x, _steps(x.shape[0], t, x.device)), t)
        if t > 1:
            z = torch.randn(x.shape, generator=generator, device=x.device)
            x = x + schedule.beta[t - 1].item() ** 0.5 * z
    return x


def diffusion_x(
    eps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    schedule: Schedule,
    extra: int = 8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Diffusion-X (Pearce et al. 2023).

    T DDPM steps, then ``extra`` noise-free steps at t = 1 (T + M evaluations).
    """
    x = ddpm(eps, x, schedule, generator)
    for _ in range(extra):
        x = schedule._reverse(x, eps(x, _steps(x.shape[0], 1, x.device)), 1)
    return x


def ddim(
    eps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    schedule: Schedule,
    steps: int,
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) on ``steps`` evenly spaced steps of the same model."""
    ts = torch.linspace(schedule.T, 1, steps).round().long().tolist()
    for i, t in enumerate(ts):
        e = eps(x, _steps(x.shape[0], t, x.device))
        ab = schedule.alpha_bar[t - 1].item()
        x0 = (x - (1 - ab) ** 0.5 * e) / ab**0.5
        ab_next = schedule.alpha_bar[ts[i + 1] - 1].item() if i + 1 < len(ts) else 1.0
        x = ab_next**0.5 * x0 + (1 - ab_next) ** 0.5 * e
    return x


def euler(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, steps: int
) -> torch.Tensor:
    """Euler integration of the flow from tau = 1 to 0 in ``steps`` evaluations."""
    for i in range(steps):
        tau = 1.0 - i / steps
        x = x - velocity(x, torch.full((x.shape[0],), tau, device=x.device)) / steps
    return x


def direct(net, x, run):
    """One evaluation of a regression network (MSE-BC, DBC): nothing to integrate."""
    return net(x, None)


@dataclass(frozen=True)
class Run:
    """What one generation may use besides the denoiser closure and the start noise."""

    schedule: Schedule
    steps: int  # evaluations of the few-step samplers (ddim, euler)
    extra_steps: int  # Diffusion-X M
    generator: torch.Generator | None = None


@dataclass(frozen=True)
class Sampler:
    """A sampler: the families it serves, ``run(net, x, Run) -> x`` and its network evaluations."""

    families: tuple
    run: Callable
    evaluations: Callable  # (Run) -> network evaluations per generation


SAMPLERS = {
    'diffusion_x': Sampler(
        ('diffusion',),
        lambda f, x, r: diffusion_x(f, x, r.schedule, r.extra_steps, r.generator),
        lambda r: r.schedule.T + r.extra_steps,
    ),
    'ddpm': Sampler(
        ('diffusion',), lambda f, x, r: ddpm(f, x, r.schedule, r.generator), lambda r: r.schedule.T
    ),
    'ddim': Sampler(
        ('diffusion',), lambda f, x, r: ddim(f, x, r.schedule, r.steps), lambda r: r.steps
    ),
    'euler': Sampler(('flow',), lambda f, x, r: euler(f, x, r.steps), lambda r: r.steps),
    'direct': Sampler(('bc', 'dbc'), direct, lambda r: 1),
}
