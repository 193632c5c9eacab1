"""Offline evaluation on the held-out last 20 % of each session.

With the agent and integrator the nodes use.

Per session: teacher-forced one-step MPJPE (previous true pose + the first
predicted delta, of one sample and of the medoid of the k as the agent picks
it), chunk MPJPE (the H-frame plan integrated from the true pose), best-of-k
ADE and diversity over the chunk, open-loop rollouts (the agent feeds on its
own executed poses, the group is replayed) at the horizons of 1, 5 and 10 s
that fit the held-out time, per-frame planning time and the invitation-hand
test. Beside every error stand two baselines: holding the pose and the
damped constant-velocity forecast (its time constant fitted on the training
part). Joints the recording did not see are not scored; bone errors are
shown next to the data's own bone variation.
"""

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from social_pose_diffusion.core.atomic import write_bytes, write_json
from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.core.session import Session, rate_mismatch
from social_pose_diffusion.core.skeleton import (
    apply_delta,
    bone_lengths,
    joint_distance,
    pose_delta,
)
from social_pose_diffusion.evaluation.metrics import (
    best_of_k_ade,
    bone_length_error,
    bone_weight,
    diversity,
    hand_choice,
    masked_mean,
    masked_mpjpe,
    one_step_mpjpe,
    timing,
    wrist_lift,
)
from social_pose_diffusion.learning import dataset
from social_pose_diffusion.planning.agent import FacilitatorAgent, medoid_index
from social_pose_diffusion.planning.integrator import Integrator
from social_pose_diffusion.policy.prior import decay_per_frame

HORIZONS_S = (1.0, 5.0, 10.0)


def group_frame(session: Session, t: int, stamp_ns: int | None = None) -> GroupFrame:
    """Frame ``t`` of a session as the GroupFrame a node would receive (optionally restamped)."""
    stamp = int(session.stamps_ns[t] if stamp_ns is None else stamp_ns)
    return GroupFrame(stamp, session.participant_ids, session.participants[t])


def start_agent(policy, session, t, raw_frame=None, **options):
    """An agent primed with the true history up to frame ``t`` inside its segment.

    It keeps the confidently seen bones of the pose at ``t``, as the node keeps
    those of the pose it starts from (a model that learned nothing then holds
    the pose exactly); a bone not seen there takes the session's robust length
    (:meth:`Session.bone_lengths`). The episode starts at ``t``
    (:meth:`~.planning.agent.FacilitatorAgent.start_episode_at`): starting it at the
    oldest history frame drew a held pose 0.01 away back by 0.0095 in 1 s. The history
    committed ends at the pose at ``t`` and moves only where the recording saw the joint
    at both ends of a step, as the training features do (a filled-in joint is not moving).
    """
    agent = FacilitatorAgent(policy, fps=policy.config.fps, **options)
    c = policy.config
    seg = session.segment_bounds()[0][t]
    first = max(t - c.history, seg)
    fac, seen = np.asarray(session.facilitator, np.float64), session.seen()
    history = [fac[t, :, :2]]
    for s in range(t, first, -1):
        step = pose_delta(fac[s - 1, :, :2], fac[s, :, :2]) * (seen[s - 1] & seen[s])[:, None]
        history.insert(0, apply_delta(history[0], -step))
    agent.reset(history[0])
    now = session.facilitator[t]
    agent.integrator.lengths = np.where(
        bone_weight(now) > 0, bone_lengths(now[:, :2]), session.bone_lengths()
    )
    for s, pose in zip(range(first + 1, t + 1), history[1:]):
        agent.commit(session.stamps_ns[s], pose)
    agent.start_episode_at(now)
    # The whole segment when the policy keeps a motion memory, else back to its longest lag.
    for s in range(seg if c.memory_s else max(t - max(c.lags) - 1, seg), t):
        agent.observe(group_frame(session, s))
    return agent


def from_true_poses(config, facilitator, frames, deltas):
    """Sampled chunks ``deltas`` integrated from the true ``facilitator`` poses at ``frames``.

    ``deltas``: (N, k, H, J, 2).

    Each chunk keeps its start pose's bone lengths, as the agent does when it starts from an
    observed pose.
    """
    return np.stack(
        [
            Integrator.for_model(facilitator[t], config).rollout(
                np.broadcast_to(facilitator[t], deltas.shape[1:2] + facilitator.shape[1:]), d
            )
            for t, d in zip(frames, deltas)
        ]
    )


def baseline_decay_s(session, config):
    """The damped-velocity baseline's time constant, fitted on the session's training part."""
    return dataset.fit_decay_s([session], config)


def chunk_metrics(policy, session, k=8, sampler=None, steps=None, raw_frame=None, batch=128):
    """Teacher-forced metrics over the evaluation frames, with hold and velocity baselines.

    Sampling is batched.

    Only steps whose true joint was seen count (``Samples.weights``).
    """
    c = policy.config
    data = dataset.build([session], c, 'eval', 1, [raw_frame] if raw_frame else None)
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    decay_s = baseline_decay_s(session, c)
    names = HEADLINE
    sums, totals = np.zeros(len(names)), np.zeros(len(names))
    for lo in range(0, len(data), batch):
        rows = np.arange(lo, min(lo + batch, len(data)))
        obs, _ = data.batch(rows)
        w = data.weights[rows]
        deltas = policy.sample(obs, k, sampler, steps)
        t = data.where[rows, 1]
        truth = fac[np.minimum(t[:, None] + np.arange(1, c.horizon + 1)[None], len(fac) - 1)]
        poses = from_true_poses(c, fac, t, deltas)
        pick = medoid_index(poses)
        chosen = deltas[np.arange(len(rows)), pick, 0]
        decay = decay_per_frame(session.fps, decay_s)
        velocity = dataset.velocity_forecast(session, t, c.horizon, decay)
        hold = np.broadcast_to(fac[t][:, None], truth.shape)
        w1, now, after = w[:, 0], fac[t], fac[t + 1]
        values = [
            one_step_mpjpe(now, deltas[:, 0, 0], after, w1),
            one_step_mpjpe(now, chosen, after, w1),
            masked_mpjpe(now, after, w1),
            masked_mpjpe(velocity[:, 0], after, w1),
            masked_mpjpe(poses[:, 0], truth, w),
            masked_mpjpe(poses[np.arange(len(rows)), pick], truth, w),
            masked_mpjpe(hold, truth, w),
            masked_mpjpe(velocity, truth, w),
            best_of_k_ade(poses, truth, w),
            diversity(poses),
        ]
        weight = np.array([w1.sum()] * 4 + [w.sum()] * 4 + [len(rows)] * 2, np.float64)
        sums += np.nan_to_num(values) * weight
        totals += weight
    out = dict(zip(names, (sums / np.maximum(totals, 1e-12)).tolist()))
    return {'frames': len(data), 'k': int(k), **out, 'velocity_decay_s': decay_s}


def fitting_horizons(session, config, seconds=HORIZONS_S):
    """(the horizons that fit the held-out time, {horizon: why not} for the others)."""
    cut = dataset.split(len(session), config)[1]
    held = (session.stamps_ns[-1] - session.stamps_ns[cut[0]]) * 1e-9 if len(cut) else 0.0
    fit = [h for h in seconds if h + 1.0 / config.fps <= held + 1e-9]
    why = {
        f'{h:g}s': (
            f'a {h:g} s rollout needs {h:g} s of held-out time after its start; '
            f'this session holds {held:.1f} s (the last 20 %): record '
            f'{h / 0.2:.0f} s or more for it'
        )
        for h in seconds
        if h not in fit
    }
    return fit, why


def _truth_rows(session, stamps):
    """Per target stamp: the session frame within half a frame of it and the newest before it.

    The first is -1 where there is none (a gap).
    """
    s = np.asarray(session.stamps_ns, np.int64)
    near = np.clip(np.searchsorted(s, stamps), 1, len(s) - 1)
    near = np.where(np.abs(s[near - 1] - stamps) < np.abs(s[near] - stamps), near - 1, near)
    half = 0.5e9 / session.fps
    return (
        np.where(np.abs(s[near] - stamps) < half, near, -1),
        np.clip(np.searchsorted(s, stamps, side='right') - 1, 0, None),
    )


def rollout_starts(
    session: Session, frames: np.ndarray, n: int, starts: int, config, end: int
) -> np.ndarray:
    """Up to ``starts`` evenly spread frames of ``frames`` to start ``n``-frame rollouts from.

    Each leaves ``n`` frames of time before frame ``end`` and, where there is
    room, has some history of ``frames`` before it.
    """
    period = 1e9 / config.fps
    first = frames[max(0, min(len(frames) - 1, config.history))]
    room = session.stamps_ns[frames] + n * period <= session.stamps_ns[end] + period / 2
    candidates = frames[(frames >= first) & room]
    if not len(candidates):
        candidates = frames[:1]
    return np.unique(candidates[np.linspace(0, len(candidates) - 1, starts).round().astype(int)])


def rollout_from(
    policy,
    session: Session,
    start: int,
    n: int,
    replan: int = 1,
    sampler: str | None = None,
    steps: int | None = None,
    raw_frame=None,
    samples: int = 4,
    times: list | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One open-loop rollout of ``n`` frames from ``start``, the agent run as the node runs it.

    Returns the executed poses (n, J, 2), the session frame each is scored
    against (-1 in a gap) and the bone lengths the agent kept; plan times are
    appended to ``times``.
    """
    agent = start_agent(policy, session, start, samples=samples, sampler=sampler, steps=steps)
    period = 1e9 / policy.config.fps
    clock = session.stamps_ns[start] + np.round(np.arange(n + 1) * period).astype(np.int64)
    truth_row, latest = _truth_rows(session, clock)
    executed: list[np.ndarray] = []
    i = 0
    while len(executed) < n:
        t0 = time.perf_counter()
        plan = agent.plan(
            group_frame(session, latest[i], clock[i]),
            image=raw_frame(latest[i]) if raw_frame else None,
        )
        if times is not None:
            times.append(time.perf_counter() - t0)
        for j in range(min(replan, n - len(executed))):
            executed.append(agent.execute(plan.stamps_ns[j], plan.poses[j]))
            i += 1
            if j + 1 < replan:
                agent.observe(group_frame(session, latest[i], clock[i]))
    return np.stack(executed), truth_row[1:], agent.integrator.lengths


def rollouts(
    policy,
    session,
    starts=3,
    seconds=HORIZONS_S,
    replan=1,
    sampler=None,
    steps=None,
    raw_frame=None,
    progress=False,
    samples=4,
):
    """Open-loop rollouts from ``starts`` evaluation frames.

    MPJPE vs time, baselines, bone error, plan times.

    The agent runs as the policy node does (``samples`` plans per step, their
    medoid executed) at the model's frame rate; each step is scored against
    the recorded frame at that time where there is one (gaps are skipped).
    Horizons longer than the held-out time are listed under ``skipped``.
    """
    c = policy.config
    fit, skipped = fitting_horizons(session, c, seconds)
    if not fit:
        return {'skipped': skipped}
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    seen = session.seen()
    n = int(round(max(fit) * c.fps))
    cut = dataset.split(len(session), c)[1]
    picks = rollout_starts(session, cut, n, starts, c, len(session) - 1)
    decay = decay_per_frame(c.fps, baseline_decay_s(session, c))
    errors, hold, velocity, bones, bones_truth, times = [], [], [], [], [], []
    for s in tqdm(picks, desc='rollouts', disable=not progress, leave=False):
        executed, rows, lengths = rollout_from(
            policy, session, s, n, replan, sampler, steps, raw_frame, samples, times
        )
        w = np.where(rows[:, None] >= 0, seen[np.maximum(rows, 0)], False).astype(np.float64)
        truth = fac[np.maximum(rows, 0)]
        cv = dataset.velocity_forecast(session, [s], n, decay, rate=session.fps / c.fps)[0]
        for out, pred in (
            (errors, executed),
            (hold, np.broadcast_to(fac[s], truth.shape)),
            (velocity, cv),
        ):
            d = joint_distance(pred, truth)
            out.append(np.where(w.sum(-1) > 0, (d * w).sum(-1) / np.maximum(w.sum(-1), 1), np.nan))
        bones.append(bone_length_error(executed, lengths))
        bw = bone_weight(session.facilitator[np.maximum(rows, 0)]) * (rows >= 0)[:, None]
        off = np.abs(bone_lengths(executed) - bone_lengths(truth)) / lengths
        bones_truth.append(masked_mean(off, bw))
    curve, hold, velocity = (np.nanmean(np.stack(x), 0) for x in (errors, hold, velocity))
    pairs = np.random.default_rng(0).integers(cut[0], len(session), (2, 2000))
    pair_w = seen[pairs[0]] & seen[pairs[1]]
    at = {f'{h:g}s': int(round(h * c.fps)) - 1 for h in fit}
    pick = lambda x: {k: float(x[i]) for k, i in at.items()}  # noqa: E731
    return {
        'starts': int(len(picks)),
        'replan': int(replan),
        'samples': int(samples),
        'curve': np.nan_to_num(curve).round(6).tolist(),
        'hold_curve': np.nan_to_num(hold).round(6).tolist(),
        'velocity_curve': np.nan_to_num(velocity).round(6).tolist(),
        'mpjpe': pick(curve),
        'hold_baseline': pick(hold),
        'velocity_baseline': pick(velocity),
        'noise_floor': masked_mpjpe(fac[pairs[0]], fac[pairs[1]], pair_w),
        'bone_length_error': float(np.mean(bones)),
        'bone_error_vs_truth': float(np.nanmean(bones_truth)),
        'bone_variation_data': session.bone_variation(cut),
        'time': timing(times),
        **({'skipped': skipped} if skipped else {}),
    }


def invitation_onsets(session, config, frames=None):
    """Frames where an invitation gesture starts.

    Only frames with the history and a whole chunk inside the session.
    """
    onsets = session.invitation_onsets()
    onsets = onsets[
        (onsets >= max(config.history, max(config.lags)))
        & (onsets + config.horizon < len(session))
    ]
    return onsets if frames is None else onsets[np.isin(onsets, frames)]


def invitation_test(policy, session, k=32, sampler=None, steps=None, frames=None, raw_frame=None):
    """The bimodal case: ``k`` action chunks sampled from the observation at each invitation onset.

    The observation holds the true history up to the onset (which hand will
    rise is not in it: the simulator picks it at random); each chunk is
    integrated from the true pose and classified by :func:`hand_choice`
    against the true wrist lift over the same chunk.
    """
    c = policy.config
    onsets = invitation_onsets(session, c, frames)
    if not len(onsets):
        return {}
    deltas = policy.sample(dataset.observations(session, c, onsets, raw_frame), k, sampler, steps)
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    poses = from_true_poses(c, fac, onsets, deltas)
    lifts = wrist_lift(poses, fac[onsets][:, None])
    truth = np.stack([wrist_lift(fac[t + 1 : t + 1 + c.horizon], fac[t]).max() for t in onsets])
    result = hand_choice(
        lifts.reshape(-1, 2), np.repeat(truth, k), np.repeat(np.arange(len(onsets)), k)
    )
    return {
        'onsets': len(onsets),
        'samples_per_onset': int(k),
        'true_hands': [int(session.invite_hand[t]) for t in onsets],
        **result,
    }


def evaluate(
    policy,
    sessions,
    names=None,
    k=8,
    sampler=None,
    steps=None,
    starts=3,
    replan=1,
    raw_frames=None,
    invitation_samples=32,
    progress=True,
    seed=0,
    agent_samples=4,
):
    """The report dict for ``sessions`` (one entry each, plus their mean); sampling is seeded."""
    import torch

    torch.manual_seed(seed)
    c = policy.config
    report = {
        'model': c.to_dict(),
        'sampler': sampler or c.sampler,
        'steps': steps or c.steps,
        'sessions': [],
    }
    for i, session in enumerate(sessions):
        if len(session) < (need := dataset.min_frames(c, 1)):
            raise ValueError(
                f'{names[i] if names else f"session {i}"}: too short to evaluate: its held-out '
                f'last 20 % must hold more than a {c.horizon}-frame chunk, which takes '
                f'{need} frames ({need / session.fps:.1f} s at {session.fps:g} fps); it has '
                f'{len(session)}'
            )
    for i, session in enumerate(
        tqdm(sessions, desc='evaluate', unit='session', disable=not progress)
    ):
        raw = raw_frames[i] if raw_frames else None
        entry = {
            'name': names[i] if names else f'session{i}',
            'style': session.info.get('style', ''),
            **chunk_metrics(policy, session, k, sampler, steps, raw),
        }
        entry['rollout'] = rollouts(
            policy,
            session,
            starts,
            HORIZONS_S,
            replan,
            sampler,
            steps,
            raw,
            progress,
            agent_samples,
        )
        entry['warnings'] = [w for w in [rate_mismatch(c.fps, session.fps)] if w]
        entry['warnings'] += list(entry['rollout'].get('skipped', {}).values())
        entry['invitation'] = invitation_test(
            policy,
            session,
            invitation_samples,
            sampler,
            steps,
            raw_frame=raw,
            frames=dataset.split(len(session), c)[1],
        )
        report['sessions'].append(entry)
    report['mean'] = summary(report['sessions'])
    report['versus_baselines'] = verdict(report['mean'])
    report['example'] = example(
        policy, sessions[0], k, sampler, steps, raw_frames[0] if raw_frames else None
    )
    return report


HEADLINE = (
    'mpjpe_one_step',
    'mpjpe_one_step_medoid',
    'hold_one_step',
    'velocity_one_step',
    'mpjpe_chunk',
    'mpjpe_chunk_medoid',
    'hold_chunk',
    'velocity_chunk',
    'best_of_k_ade',
    'diversity',
)
ROLLOUT_KEYS = ('mpjpe', 'hold_baseline', 'velocity_baseline')


def summary(entries: list[dict]) -> dict:
    """Means of the headline numbers over session entries.

    Rollout horizons: those every rolled session has.
    """
    out: dict[str, Any] = {key: float(np.nanmean([e[key] for e in entries])) for key in HEADLINE}
    rolled = [e['rollout'] for e in entries if e.get('rollout', {}).get('mpjpe')]
    if rolled:
        horizons = [h for h in rolled[0]['mpjpe'] if all(h in r['mpjpe'] for r in rolled)]
        for key in ROLLOUT_KEYS:
            out[f'rollout_{key}'] = {
                h: float(np.mean([r[key][h] for r in rolled])) for h in horizons
            }
        for key in (
            'noise_floor',
            'bone_length_error',
            'bone_error_vs_truth',
            'bone_variation_data',
        ):
            name = f'rollout_{key}' if key == 'noise_floor' else key
            out[name] = float(np.mean([r[key] for r in rolled]))
        out['time_mean_ms'] = float(np.mean([r['time']['mean_ms'] for r in rolled]))
        out['time_p95_ms'] = float(np.mean([r['time']['p95_ms'] for r in rolled]))
    return out


def verdict(mean: dict) -> dict:
    """Per metric and horizon.

    The model's error beside the better baseline, and whether it is no worse.
    """
    pairs = {
        'one_step': ('mpjpe_one_step_medoid', 'hold_one_step', 'velocity_one_step'),
        'chunk': ('mpjpe_chunk_medoid', 'hold_chunk', 'velocity_chunk'),
    }
    out = {
        name: {
            'model': mean[m],
            'best_baseline': min(mean[h], mean[v]),
            'no_worse': mean[m] <= min(mean[h], mean[v]),
        }
        for name, (m, h, v) in pairs.items()
    }
    for h, value in mean.get('rollout_mpjpe', {}).items():
        best = min(mean['rollout_hold_baseline'][h], mean['rollout_velocity_baseline'][h])
        out[f'rollout_{h}'] = {'model': value, 'best_baseline': best, 'no_worse': value <= best}
    return out


EXAMPLE_JOINTS = ('nose', 'left_wrist', 'right_wrist')


def example(policy, session, k=8, sampler=None, steps=None, raw_frame=None):
    """K integrated plans and the truth at one evaluation frame.

    The frame is an invitation onset if there is one.
    """
    from social_pose_diffusion.core.skeleton import JOINT

    c = policy.config
    frames = dataset.split(len(session), c)[1]
    if not len(frames):
        return {}
    onsets = invitation_onsets(session, c, frames)
    t = int(onsets[0]) if len(onsets) else int(frames[len(frames) // 2])
    agent = start_agent(policy, session, t, samples=k, sampler=sampler, steps=steps)
    plan = agent.plan(group_frame(session, t), image=raw_frame(t) if raw_frame else None)
    joints = [JOINT[j] for j in EXAMPLE_JOINTS]
    truth = np.asarray(session.facilitator)[t : t + 1 + c.horizon, joints, :2]
    return {
        'frame': t,
        'joints': list(EXAMPLE_JOINTS),
        'truth': truth.round(5).tolist(),
        'samples': plan.samples[:, :, joints].round(5).tolist(),
        'start': truth[0].round(5).tolist(),
    }


def markdown(report: dict) -> str:
    """The report as Markdown tables: every error beside its hold / damped-velocity baselines."""
    f = lambda x, p=5: '' if x is None or not np.isfinite(x) else f'{x:.{p}f}'  # noqa: E731
    trio = lambda m, h, v, p=5: f'{f(m, p)} ({f(h, p)} / {f(v, p)})'  # noqa: E731
    lines = [
        f'# Evaluation: {report["model"]["encoder"]} encoder, {report["model"]["policy"]} policy, '
        f'sampler {report["sampler"]} ({report["steps"]} steps), '
        f'model at {report["model"]["fps"]:g} fps',
        '',
        'Units: normalised equirectangular (u = azimuth/360°, v = polar/180°, u wraps). '
        'Each cell: model (hold pose / damped constant velocity); joints the recording did '
        'not see are not scored.',
        '',
        '| session | style | one-step (medoid of k) | chunk (medoid) | best-of-k ADE | '
        'diversity | rollout 1 s | 5 s | 10 s | noise floor | bone err / data variation | '
        'plan ms mean / p95 | invitation L/R/between, '
        'both hands |',
        '|' + '---|' * 13,
    ]
    for e in report['sessions'] + [{'name': '**mean**', 'style': '', **report['mean']}]:
        r = e.get('rollout') or {key: e.get(f'rollout_{key}', {}) for key in ROLLOUT_KEYS}
        r = {**r, **{k: r.get(k, e.get(k)) for k in ('bone_length_error', 'bone_variation_data')}}
        r.setdefault('noise_floor', e.get('rollout_noise_floor'))
        r.setdefault('time', {'mean_ms': e.get('time_mean_ms'), 'p95_ms': e.get('time_p95_ms')})
        roll = [
            trio(r['mpjpe'][h], r['hold_baseline'][h], r['velocity_baseline'][h])
            if h in r.get('mpjpe', {})
            else 'does not fit'
            for h in ('1s', '5s', '10s')
        ]
        inv = e.get('invitation') or {}
        bone = r.get('bone_length_error')
        lines.append(
            ' | '.join(
                [
                    f'| {e["name"]}',
                    e['style'],
                    trio(
                        e['mpjpe_one_step_medoid'], e['hold_one_step'], e['velocity_one_step'], 6
                    ),
                    trio(e['mpjpe_chunk_medoid'], e['hold_chunk'], e['velocity_chunk']),
                    f(e['best_of_k_ade']),
                    f(e['diversity']),
                    *roll,
                    f(r.get('noise_floor')),
                    ''
                    if bone is None
                    else f'{100 * bone:.2f} % / {100 * (r.get("bone_variation_data") or 0):.1f} %',
                    f'{f(r["time"].get("mean_ms"), 2)} / {f(r["time"].get("p95_ms"), 2)}',
                    (
                        f'{inv["left"]:.2f}/{inv["right"]:.2f}/{inv["between"]:.2f}, '
                        f'{inv["both_hands"]:.2f}'
                    )
                    if inv
                    else '',
                ]
            )
            + ' |'
        )
    verdicts = report.get('versus_baselines', {})
    if verdicts:
        lines += ['', '| metric | model | better baseline | no worse |', '|---|---|---|---|']
        lines += [
            f'| {k} | {f(v["model"], 6)} | {f(v["best_baseline"], 6)} | '
            f'{"yes" if v["no_worse"] else "NO"} |'
            for k, v in verdicts.items()
        ]
    notes = [f'- {e["name"]}: {w}' for e in report['sessions'] for w in e.get('warnings', [])]
    return '\n'.join(lines + ([''] + notes if notes else [])) + '\n'


def _save_figure(fig, path):
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def plots(report: dict, stem: str) -> list[str]:
    """``<stem>_horizon.png`` (rollout error vs time) and ``<stem>_samples.png``.

    The samples plot shows the plans over the truth; returns paths.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rolled = [e for e in report['sessions'] if e.get('rollout', {}).get('curve')]
    for n, e in enumerate(rolled):
        for key, style in (('curve', '-'), ('hold_curve', ':'), ('velocity_curve', '--')):
            curve = np.asarray(e['rollout'][key])
            ax.plot(
                np.arange(1, len(curve) + 1) / report['model']['fps'],
                curve,
                style,
                color=f'C{n}',
                label=f'{e["name"]} ({key.replace("_curve", "").replace("curve", "model")})',
            )
    if rolled:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, 'no rollout fits the held-out time', ha='center', transform=ax.transAxes)
    ax.set_xlabel('rollout time (s)')
    ax.set_ylabel('MPJPE (normalised equirect)')
    ax.set_title('open-loop rollout error vs horizon')
    _save_figure(fig, f'{stem}_horizon.png')
    paths.append(f'{stem}_horizon.png')
    ex = report.get('example') or {}
    if ex:
        fig, ax = plt.subplots(figsize=(6, 4))
        samples, truth = np.asarray(ex['samples']), np.asarray(ex['truth'])
        for j, name in enumerate(ex['joints']):
            colour = f'C{j}'
            for s in samples[:, :, j]:
                ax.plot(s[:, 0], s[:, 1], color=colour, alpha=0.35, lw=1)
            ax.plot(truth[:, j, 0], truth[:, j, 1], color=colour, lw=2.5, label=f'{name} (truth)')
        ax.invert_yaxis()
        ax.set_xlabel('u')
        ax.set_ylabel('v')
        ax.set_title(f'{len(samples)} sampled plans (thin) vs truth, frame {ex["frame"]}')
        ax.legend(fontsize=7)
        _save_figure(fig, f'{stem}_samples.png')
        paths.append(f'{stem}_samples.png')
    return paths


def write_report(report: dict, path: str | Path, with_plots: bool = True) -> list[str]:
    """JSON at ``path``, Markdown and plots next to it (same stem), all atomic.

    Returns the written paths.
    """
    path = Path(path)
    stem = str(path.with_suffix(''))
    written = plots(report, stem) if with_plots else []
    text = markdown(report)
    if 'social' in report:
        from social_pose_diffusion.evaluation import social

        text += '\n' + social.markdown(report['social'])
        written += social.plots(report['social'], stem) if with_plots else []
    md = path.with_suffix('.md')
    write_bytes(md, text.encode())
    write_json(path, report)
    return [str(path), str(md)] + written
