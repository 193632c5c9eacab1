"""Offline evaluation on the held-out last 20 % of each session, with the agent and integrator the nodes use.

Per session: teacher-forced one-step MPJPE (previous true pose + the first
predicted delta, of one sample and of the medoid of the k as the agent picks
it), chunk MPJPE (the H-frame plan integrated from the true pose), best-of-k
ADE and diversity over the chunk, open-loop rollouts (the agent feeds on its
own executed poses, the group is replayed) at 1, 5 and 10 s with a "hold the
start pose" baseline and the noise floor (mean distance between two true
poses at random held-out times), bone-length error, per-frame planning time,
and the invitation-hand test.
"""
import time

import numpy as np
from tqdm import tqdm

from social_pose_diffusion.learning import dataset
from social_pose_diffusion.planning.agent import FacilitatorAgent, medoid_index
from social_pose_diffusion.core.atomic import write_bytes, write_json
from social_pose_diffusion.planning.integrator import Integrator
from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.evaluation.metrics import best_of_k_ade, bone_length_error, diversity, hand_choice, one_step_mpjpe, timing, wrist_lift
from social_pose_diffusion.core.skeleton import bone_lengths, joint_distance, mpjpe

HORIZONS_S = (1.0, 5.0, 10.0)


def group_frame(session, t):
    """Frame ``t`` of a session as the GroupFrame a node would receive."""
    return GroupFrame(int(session.stamps_ns[t]), session.participant_ids, session.participants[t])


def start_agent(policy, session, t, raw_frame=None, **options):
    """An agent primed with the true history up to frame ``t`` (poses t-K..t, group frames back to the longest lag)."""
    agent = FacilitatorAgent(policy, fps=session.fps, **options)
    c = policy.config
    first = max(t - c.history, 0)
    agent.reset(session.facilitator[first])
    for s in range(first + 1, t + 1):
        agent.commit(session.stamps_ns[s], session.facilitator[s])
    # The whole past when the policy keeps a motion memory, else back to its longest lag.
    for s in range(0 if c.memory_s else max(t - max(c.lags) - 1, 0), t):
        agent.observe(group_frame(session, s))
    return agent


def from_true_poses(config, facilitator, frames, deltas):
    """Sampled chunks ``deltas`` (N, k, H, J, 2) integrated from the true ``facilitator`` poses at ``frames``."""
    start = np.broadcast_to(facilitator[frames][:, None], deltas.shape[:2] + facilitator.shape[1:])
    return Integrator.for_pose(facilitator[0], np.asarray(config.max_speed)).rollout(start, deltas)


def chunk_metrics(policy, session, k=8, sampler=None, steps=None, raw_frame=None, batch=128):
    """Teacher-forced metrics over the evaluation frames (batched sampling, the true bone lengths)."""
    c = policy.config
    data = dataset.build([session], c, 'eval', 1, [raw_frame] if raw_frame else None)
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    sums = np.zeros(5)
    for lo in range(0, len(data), batch):
        rows = np.arange(lo, min(lo + batch, len(data)))
        obs, _ = data.batch(rows)
        deltas = policy.sample(obs, k, sampler, steps)
        t = data.where[rows, 1]
        truth = fac[t[:, None] + np.arange(1, c.horizon + 1)[None]]
        poses = from_true_poses(c, fac, t, deltas)
        chosen = deltas[np.arange(len(rows)), medoid_index(poses), 0]
        sums += len(rows) * np.array([one_step_mpjpe(fac[t], deltas[:, 0, 0], fac[t + 1]),
                                      one_step_mpjpe(fac[t], chosen, fac[t + 1]),
                                      mpjpe(poses[:, 0], truth), best_of_k_ade(poses, truth), diversity(poses)])
    sums /= max(len(data), 1)
    return {'frames': len(data), 'k': int(k), 'mpjpe_one_step': sums[0], 'mpjpe_one_step_medoid': sums[1],
            'mpjpe_chunk': sums[2], 'best_of_k_ade': sums[3], 'diversity': sums[4]}


def rollouts(policy, session, starts=3, seconds=HORIZONS_S, replan=1, sampler=None, steps=None, raw_frame=None,
             progress=False, samples=4):
    """Open-loop rollouts from ``starts`` evaluation frames: MPJPE vs time, baselines, bone error, plan times.

    The agent runs as the policy node does: ``samples`` plans per step, their medoid executed.
    """
    fps, c = session.fps, policy.config
    fac = np.asarray(session.facilitator, np.float64)[..., :2]
    n = int(round(max(seconds) * fps))
    cut = dataset.split(len(session), c)[1]
    last = len(session) - n - 1
    if not len(cut) or last < cut[0]:
        return {}
    errors, hold, bones, times = [], [], [], []
    for s in tqdm(np.linspace(cut[0], last, starts).astype(int), desc='rollouts', disable=not progress, leave=False):
        agent = start_agent(policy, session, s, samples=samples, sampler=sampler, steps=steps)
        executed, t = [], s
        while len(executed) < n:
            t0 = time.perf_counter()
            plan = agent.plan(group_frame(session, t), image=raw_frame(t) if raw_frame else None)
            times.append(time.perf_counter() - t0)
            for i in range(min(replan, n - len(executed))):
                agent.commit(plan.stamps_ns[i], plan.poses[i])
                executed.append(plan.poses[i])
                t += 1
                if i + 1 < replan:
                    agent.observe(group_frame(session, t))
        executed = np.stack(executed)
        truth = fac[s + 1:s + 1 + n]
        errors.append(joint_distance(executed, truth).mean(-1))
        hold.append(joint_distance(fac[s][None], truth).mean(-1))
        bones.append(bone_length_error(executed, bone_lengths(fac[s])))
    curve, hold = np.mean(errors, 0), np.mean(hold, 0)
    pairs = np.random.default_rng(0).integers(cut[0], len(session), (2, 2000))
    at = {f'{h:g}s': int(round(h * fps)) - 1 for h in seconds}
    return {'starts': int(starts), 'replan': int(replan), 'samples': int(samples), 'curve': curve.round(6).tolist(),
            'mpjpe': {k: float(curve[i]) for k, i in at.items()},
            'hold_baseline': {k: float(hold[i]) for k, i in at.items()},
            'noise_floor': float(joint_distance(fac[pairs[0]], fac[pairs[1]]).mean()),
            'bone_length_error': float(np.mean(bones)), 'time': timing(times)}


def invitation_onsets(session, config, frames=None):
    """Frames where an invitation gesture starts (with the history and a whole chunk inside the session)."""
    onsets = np.flatnonzero((session.invite >= 0) & (np.r_[-1, session.invite[:-1]] < 0))
    onsets = onsets[(onsets >= max(config.history, max(config.lags))) & (onsets + config.horizon < len(session))]
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
    truth = np.stack([wrist_lift(fac[t + 1:t + 1 + c.horizon], fac[t]).max() for t in onsets])
    result = hand_choice(lifts.reshape(-1, 2), np.repeat(truth, k), np.repeat(np.arange(len(onsets)), k))
    return {'onsets': len(onsets), 'samples_per_onset': int(k),
            'true_hands': [int(session.invite_hand[t]) for t in onsets], **result}


def evaluate(policy, sessions, names=None, k=8, sampler=None, steps=None, starts=3, replan=1, raw_frames=None,
             invitation_samples=32, progress=True, seed=0, agent_samples=4):
    """The report dict for ``sessions`` (one entry each, plus their mean); sampling is seeded."""
    import torch
    torch.manual_seed(seed)
    c = policy.config
    report = {'model': c.to_dict(), 'sampler': sampler or c.sampler, 'steps': steps or c.steps, 'sessions': []}
    for i, session in enumerate(tqdm(sessions, desc='evaluate', unit='session', disable=not progress)):
        raw = raw_frames[i] if raw_frames else None
        entry = {'name': names[i] if names else f'session{i}', 'style': session.info.get('style', ''),
                 **chunk_metrics(policy, session, k, sampler, steps, raw)}
        entry['rollout'] = rollouts(policy, session, starts, HORIZONS_S, replan, sampler, steps, raw, progress,
                                    agent_samples)
        entry['invitation'] = invitation_test(policy, session, invitation_samples, sampler, steps,
                                              raw_frame=raw, frames=dataset.split(len(session), c)[1])
        report['sessions'].append(entry)
    report['mean'] = summary(report['sessions'])
    report['example'] = example(policy, sessions[0], k, sampler, steps, raw_frames[0] if raw_frames else None)
    return report


def summary(entries):
    """Means of the headline numbers over session entries."""
    keys = ('mpjpe_one_step', 'mpjpe_one_step_medoid', 'mpjpe_chunk', 'best_of_k_ade', 'diversity')
    out = {key: float(np.mean([e[key] for e in entries])) for key in keys}
    rolled = [e['rollout'] for e in entries if e.get('rollout')]
    if rolled:
        for key in ('mpjpe', 'hold_baseline'):
            out[f'rollout_{key}'] = {h: float(np.mean([r[key][h] for r in rolled])) for h in rolled[0][key]}
        out['rollout_noise_floor'] = float(np.mean([r['noise_floor'] for r in rolled]))
        out['bone_length_error'] = float(np.mean([r['bone_length_error'] for r in rolled]))
        out['time_mean_ms'] = float(np.mean([r['time']['mean_ms'] for r in rolled]))
        out['time_p95_ms'] = float(np.mean([r['time']['p95_ms'] for r in rolled]))
    return out


EXAMPLE_JOINTS = ('nose', 'left_wrist', 'right_wrist')


def example(policy, session, k=8, sampler=None, steps=None, raw_frame=None):
    """k integrated plans and the truth at one evaluation frame (an invitation onset if there is one)."""
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
    truth = np.asarray(session.facilitator)[t:t + 1 + c.horizon, joints, :2]
    return {'frame': t, 'joints': list(EXAMPLE_JOINTS), 'truth': truth.round(5).tolist(),
            'samples': plan.samples[:, :, joints].round(5).tolist(), 'start': truth[0].round(5).tolist()}


def markdown(report):
    """The report as a Markdown table."""
    lines = [f"# Evaluation: {report['model']['encoder']} encoder, {report['model']['policy']} policy, "
             f"sampler {report['sampler']} ({report['steps']} steps)", '',
             'Units: normalised equirectangular (u = azimuth/360°, v = polar/180°, u wraps).', '',
             '| session | style | one-step MPJPE | medoid of k | chunk MPJPE | best-of-k ADE | diversity | '
             'rollout 1 s | 5 s | 10 s | hold 10 s | noise floor | bone err | plan ms mean / p95 | '
             'invitation L/R/between, both hands |',
             '|' + '---|' * 15]
    for e in report['sessions'] + [{'name': '**mean**', 'style': '', **report['mean']}]:
        r = e.get('rollout') or {'mpjpe': e.get('rollout_mpjpe', {}), 'hold_baseline': e.get('rollout_hold_baseline', {}),
                                 'noise_floor': e.get('rollout_noise_floor'),
                                 'bone_length_error': e.get('bone_length_error'),
                                 'time': {'mean_ms': e.get('time_mean_ms'), 'p95_ms': e.get('time_p95_ms')}}
        inv = e.get('invitation') or {}
        f = lambda x, p=5: '' if x is None else f'{x:.{p}f}'  # noqa: E731
        lines.append(' | '.join([f"| {e['name']}", e['style'], f(e['mpjpe_one_step'], 6),
                                 f(e.get('mpjpe_one_step_medoid'), 6), f(e['mpjpe_chunk']),
                                 f(e['best_of_k_ade']), f(e['diversity']), f(r['mpjpe'].get('1s')),
                                 f(r['mpjpe'].get('5s')), f(r['mpjpe'].get('10s')), f(r['hold_baseline'].get('10s')),
                                 f(r['noise_floor']),
                                 '' if r.get('bone_length_error') is None else f"{100 * r['bone_length_error']:.3f} %",
                                 f"{f(r['time'].get('mean_ms'), 2)} / {f(r['time'].get('p95_ms'), 2)}",
                                 (f"{inv['left']:.2f}/{inv['right']:.2f}/{inv['between']:.2f}, "
                                  f"{inv['both_hands']:.2f}") if inv else '']) + ' |')
    return '\n'.join(lines) + '\n'


def _save_figure(fig, path):
    import io

    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def plots(report, stem):
    """``<stem>_horizon.png`` (rollout error vs time) and ``<stem>_samples.png`` (plans over the truth); returns paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for e in report['sessions']:
        if e.get('rollout'):
            curve = np.asarray(e['rollout']['curve'])
            ax.plot(np.arange(1, len(curve) + 1) / report['model']['fps'], curve, label=e['name'])
    ax.set_xlabel('rollout time (s)')
    ax.set_ylabel('MPJPE (normalised equirect)')
    ax.set_title('open-loop rollout error vs horizon')
    ax.legend(fontsize=7)
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
        ax.set_title(f"{len(samples)} sampled plans (thin) vs truth, frame {ex['frame']}")
        ax.legend(fontsize=7)
        _save_figure(fig, f'{stem}_samples.png')
        paths.append(f'{stem}_samples.png')
    return paths


def write_report(report, path, with_plots=True):
    """JSON at ``path``, Markdown and plots next to it (same stem), all atomic; returns the written paths."""
    from pathlib import Path
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
