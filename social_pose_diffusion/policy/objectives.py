"""Training objectives on normalised action chunks ``(B, H, A)``."""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from social_pose_diffusion.policy.samplers import Schedule


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """MSE.

    With ``weight`` (same shape, 0 = unknown target) the weighted mean over the known elements.
    """
    if weight is None:
        return F.mse_loss(pred, target)
    return ((pred - target) ** 2 * weight).sum() / weight.sum().clamp(min=1.0)


def diffusion_loss(
    eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """DDPM epsilon-prediction MSE with t uniform in 1..T."""
    t = torch.randint(1, schedule.T + 1, (x0.shape[0],), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    return masked_mse(eps_fn(schedule.noised(x0, t, noise), t), noise, weight)


def flow_loss(
    velocity_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Flow matching.

    Regress ``noise - x0`` at ``x_tau = tau * noise + (1 - tau) * x0``, tau uniform.
    """
    tau = torch.rand((x0.shape[0],), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    return masked_mse(
        velocity_fn(tau.view(shape) * noise + (1 - tau.view(shape)) * x0, tau), noise - x0, weight
    )


def bc_loss(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Plain MSE behaviour cloning."""
    return masked_mse(pred, target, weight)


def state_action_losses(
    critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: Schedule,
    state: torch.Tensor,
    agent_action: torch.Tensor,
    expert_action: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample diffusion losses of [state, agent action] and [state, expert action].

    Same noise and t.
    """
    agent = torch.cat([state, agent_action.flatten(1)], -1)
    expert = torch.cat([state, expert_action.flatten(1)], -1)
    t = torch.randint(
        1, schedule.T + 1, (state.shape[0],), generator=generator, device=state.device
    )
    noise = torch.randn(agent.shape, generator=generator, device=state.device)
    tt = t.float() / schedule.T
    l_agent = ((critic(schedule.noised(agent, t, noise), tt) - noise) ** 2).mean(-1)
    l_expert = ((critic(schedule.noised(expert, t, noise), tt) - noise) ** 2).mean(-1)
    return l_agent, l_expert


def dbc_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    l_agent: torch.Tensor,
    l_expert: torch.Tensor,
    weight: float,
) -> torch.Tensor:
    """DBC (Chen et al. 2024): MSE-BC + weight * mean(max(L_diff(s, pi(s)) - L_diff(s, a), 0))."""
    return bc_loss(pred, target) + weight * torch.clamp(l_agent - l_expert, min=0).mean()
