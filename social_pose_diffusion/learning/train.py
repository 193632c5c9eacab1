"""Training: diffusion (DDPM), flow matching, MSE-BC and DBC policies on training samples.

A run directory holds the policy (``model.safetensors`` + ``model.json``) and
a checkpoint of policy and training state written as one set
(:mod:`social_pose_diffusion.learning.checkpoint`), so ``resume=True``
continues where it stopped. The same seed gives the same model.
"""

import copy
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from social_pose_diffusion.core.posture import PostureLimits
from social_pose_diffusion.core.skeleton import apply_delta
from social_pose_diffusion.learning import calibrate, checkpoint, dataset
from social_pose_diffusion.learning.augment import (
    Augmentation,
    hide,
    sampling_weights,
    with_perturbations,
)
from social_pose_diffusion.observation.features import centroid
from social_pose_diffusion.policy import Policy, PolicyConfig, resolve_device
from social_pose_diffusion.policy.networks import StateActionDenoiser
from social_pose_diffusion.policy.objectives import dbc_loss, diffusion_loss, state_action_losses
from social_pose_diffusion.policy.prior import DECAY_GRID_S, HOLD_S, REST_S


def make_config(sessions, **options):
    """A :class:`PolicyConfig` for ``sessions``.

    With the neutral pose and speed limits of the training part of ``sessions``.

    fps is the data's; horizon, history and lags not given (or None) are
    :data:`dataset.HORIZON_S` etc. in seconds at that rate. A prior's
    velocity time constant not given is fitted on the training parts; a ``rest``
    prior's posture is theirs (never that of the mirrored sessions training adds).
    """
    timed = dataset.frames_for(dataset.common_fps(sessions))
    given = {k: v for k, v in options.items() if v is not None}
    rest_s = given.pop('prior_rest_s', None)  # set with the posture it pulls toward
    config = PolicyConfig(**{**timed, **given})
    longest = max(len(s) for s in sessions)
    if longest < (need := dataset.min_frames(config, 0)):
        raise ValueError(
            f'no training frames: with {config.history} frames of history and a '
            f'{config.horizon}-frame horizon a session needs at least {need} frames '
            f'({need / config.fps:.1f} s at {config.fps:g} fps); the longest has {longest}'
        )
    if rest_s is not None and config.prior != 'rest':
        raise ValueError(f'a pull time constant needs the rest prior, not {config.prior!r}')
    if config.prior != 'none' and options.get('prior_decay_s') is None:
        config.prior_decay_s = dataset.fit_decay_s(sessions, config, (HOLD_S,) + DECAY_GRID_S)
    if config.prior == 'rest':
        rest = dataset.rest_posture(*dataset.seen_poses(sessions, config))
        config.rest_posture = rest.round(6).tolist()
        config.prior_rest_s = REST_S if rest_s is None else rest_s
    first = sessions[0]
    train_idx = dataset.split(len(first), config)[0]
    pose = np.asarray(first.facilitator[train_idx[0] if len(train_idx) else 0], np.float64)[:, :2]
    neutral = apply_delta(pose, np.array([0.5 - centroid(pose)[0], 0.0]))
    speeds = [dataset.step_speeds(s, dataset.split(len(s), config)[0]) for s in sessions]
    max_speed = np.maximum(1.5 * np.concatenate(speeds).max(0), 1e-3)
    return replace(
        config,
        neutral_pose=neutral.round(6).tolist(),
        max_speed=max_speed.round(6).tolist(),
        # mirrored too: training adds every session's mirror image
        posture_limits=PostureLimits.fit(
            *dataset.seen_poses(sessions + [dataset.mirror(s)[0] for s in sessions], config)
        ).to_list(),
    )


def critic_state(policy, obs):
    """DBC critic state: normalised proprioception + mean participant token.

    Numpy obs -> tensor.
    """
    d = policy.device
    proprio = (
        torch.as_tensor(obs['proprio'], device=d) - policy.proprio_mean
    ) / policy.proprio_std
    tokens = (torch.as_tensor(obs['tokens'], device=d) - policy.token_mean) / policy.token_std
    m = torch.as_tensor(obs['mask'], device=d)[..., None].float()
    return torch.cat([proprio, (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)], -1)


def _schedule(optimizer, lr, step, total):
    for group in optimizer.param_groups:
        group['lr'] = lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(step / max(total, 1), 1.0))))


def train_critic(policy, samples, steps, batch, lr, generator, progress=False):
    """DBC step 1: a diffusion model of the joint (state, normalised action) distribution."""
    obs, actions = samples.batch(np.arange(min(len(samples), 2)))
    dim = critic_state(policy, obs).shape[-1] + policy.normalise(actions).flatten(1).shape[-1]
    critic = StateActionDenoiser(dim).to(policy.device)
    opt = torch.optim.AdamW(critic.parameters(), lr=lr)
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator)))
    for step in tqdm(range(steps), desc='critic', disable=not progress, leave=False):
        _schedule(opt, lr, step, steps)
        obs, actions = samples.batch(rng.integers(0, len(samples), batch))
        x0 = torch.cat(
            [critic_state(policy, obs), policy.normalise(actions, obs['proprio']).flatten(1)], -1
        )
        loss = diffusion_loss(
            lambda x, t: critic(x, t.float() / policy.schedule.T), x0, policy.schedule, generator
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return critic.requires_grad_(False).eval()


def train(
    config,
    sessions,
    out=None,
    train_steps=2000,
    batch=64,
    lr=1e-3,
    device='auto',
    seed=0,
    resume=False,
    raw_frames=None,
    image_stride=2,
    dbc_weight=1.0,
    critic_steps=None,
    progress=True,
    save_every=500,
    mirror=True,
    augmentation=None,
    ema_decay=0.999,
    visits=None,
):
    """Train a policy of ``config`` for ``train_steps`` optimiser steps; returns (policy, losses).

    The training samples come from the training part of ``sessions``; ``mirror``
    adds every session's left-right mirror image (:func:`dataset.mirror`);
    ``augmentation`` (:class:`~social_pose_diffusion.learning.augment.Augmentation`)
    adds perturbed histories, hides histories and styles and weights onsets. With
    ``out`` the run is checkpointed there every ``save_every`` steps and at the
    end; ``resume`` continues from that checkpoint (from scratch when there is
    none) and raises :class:`checkpoint.CheckpointError` when it is unusable.
    ``ema_decay`` > 0 returns and saves the exponential moving average of the
    weights (the checkpoint keeps the last step's weights and the average, so
    a resumed run continues both). ``visits``
    (:class:`~social_pose_diffusion.learning.closed_loop.Visits` of ``sessions``) adds the
    states a policy reached driving itself, labelled back to the demonstration.
    """
    if isinstance(train_steps, bool) or not isinstance(train_steps, int) or train_steps < 1:
        raise ValueError(f'train_steps must be a positive integer, not {train_steps!r}')
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f'ema_decay must be in [0, 1), not {ema_decay!r}')
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    dev = resolve_device(device)
    stride = image_stride if config.encoder_spec.image_input else 1
    recorded = list(sessions)  # the gain is calibrated on these, never their mirror images
    if mirror:
        flipped = [
            dataset.mirror(s, raw_frames[i] if raw_frames else None)
            for i, s in enumerate(sessions)
        ]
        sessions = list(sessions) + [f[0] for f in flipped]
        raw_frames = (list(raw_frames) + [f[1] for f in flipped]) if raw_frames else None
    augmentation = augmentation or Augmentation()
    if config.encoder_spec.attends and all(s.attention() is None for s in sessions):
        raise ValueError(
            f'the {config.encoder} encoder learns whom the facilitator faces from speaker '
            'labels (/session/state in a bag), and none of these sessions has them: '
            'use --encoder vector'
        )
    samples = dataset.build(sessions, config, 'train', stride, raw_frames)
    samples = with_perturbations(
        samples, sessions, config, augmentation, np.random.default_rng(seed + 17)
    )
    if visits is not None and len(visits):
        from social_pose_diffusion.learning.closed_loop import visited_samples

        visited = visited_samples(recorded, config, visits, augmentation.return_s)
        samples = dataset.Samples.join([samples, *visited])
    if len(samples) < 2:
        raise ValueError(
            'too few training frames: sessions must be longer than a few action chunks'
        )
    policy = Policy(config)
    held = None
    if config.prior != 'none':  # the network learns what the prior misses; its gain is calibrated
        residual = (samples.actions - policy.prior(samples.obs)) * samples.weights[..., None]
        samples.actions = residual.astype(np.float32)
        samples, held = calibrate.held_back(samples, config.horizon)
        if len(samples) < 2 or not len(held):
            raise ValueError(
                'too few training frames to calibrate a prior: record longer sessions'
            )
    weights = sampling_weights(samples, sessions, augmentation)
    policy.set_normalisation(
        samples.actions, samples.obs['proprio'], samples.obs['tokens'], samples.obs['mask']
    )
    policy.to(dev).train()
    ema = None
    if ema_decay > 0:
        ema = copy.deepcopy(policy).requires_grad_(False).eval()
        ema.config = config  # one config: the calibrated residual gain is the shipped one's
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-4)
    critic = None
    if config.family.critic:
        critic = train_critic(
            policy, samples, critic_steps or train_steps, batch, lr, generator, progress
        )
    start, log = 0, []
    out = Path(out) if out else None
    if out and resume and checkpoint.exists(out):
        saved, start, log = checkpoint.load(out, config, optimizer, critic, str(dev), ema)
        if start >= train_steps:
            raise checkpoint.CheckpointError(
                f'{out / checkpoint.POINTER}: already at step '
                f'{start}; resume with more train steps'
            )
        policy.load_state_dict(saved.state_dict())
        generator.manual_seed(seed + start)
    rng = np.random.default_rng(seed + start)
    bar = tqdm(
        range(start, train_steps),
        desc=f'train {config.encoder}/{config.policy}',
        disable=not progress,
    )
    for step in bar:
        _schedule(optimizer, lr, step, train_steps)
        rows = (
            rng.choice(len(samples), batch, p=weights)
            if weights is not None
            else rng.integers(0, len(samples), batch)
        )
        obs, actions = samples.batch(rows)
        obs = hide(obs, config, augmentation, rng)
        target = policy.normalise(actions, obs['proprio'])
        tensors = policy.tensors(obs)
        if config.family.critic:
            pred = policy.net(policy.encoder(tensors))
            l_agent, l_expert = state_action_losses(
                critic, policy.schedule, critic_state(policy, obs), pred, target, generator
            )
            loss = dbc_loss(pred, target, l_agent, l_expert, dbc_weight)
            if 'target' in tensors:  # an attention encoder's pointer, as in Policy.loss
                loss = loss + policy.attention_loss(tensors)
        else:
            loss = policy.loss(tensors, target, generator, samples.weights[rows])
        value = loss.item()  # one read serves the check and the log
        if not math.isfinite(value):  # before it can reach the weights, their average or a file
            raise ValueError(
                f'training diverged: the loss is {value} at step {step + 1} '
                '(the last finite checkpoint, if any, is kept)'
            )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        if ema is not None:
            average(ema, policy, min(ema_decay, (1.0 + step) / (10.0 + step)))
        log.append(round(value, 6))
        bar.set_postfix(loss=f'{np.mean(log[-50:]):.4f}')
        if out and ((step + 1) % save_every == 0 or step + 1 == train_steps):
            checkpoint.save(out, step + 1, policy, optimizer, critic, log, ema)
    policy = policy.eval() if ema is None else ema
    if held is not None:
        config.residual_gain = calibrate.residual_gain(policy, recorded, held, seed)
        if out:
            policy.save(out / 'model.safetensors')
    return policy, log


@torch.no_grad()
def average(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model``, parameters only (buffers are fixed stats)."""
    torch._foreach_lerp_(
        [p for p in ema.parameters()], [p.detach() for p in model.parameters()], 1.0 - decay
    )
