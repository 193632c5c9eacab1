"""The paper-style table in one run, on three styles.

{raw, plotted, vector} x {Diffusion-X, fast sampler, MSE-BC, DBC}.

A control row trains the image network on blank frames (representation
``none``): what the facilitator's own history alone reaches.

Four simulated sessions per style (seeds ``seed + i + 10 j`` for style i,
copy j) are split 80/20 by time; every policy is trained on the twelve
training parts (plus their mirror images) and evaluated per style on the
held-out part of the first session. The invitation test (result 4) uses
separate sessions (seed ``test_seed + i``) whose invitations no model saw.
``social-pose evaluate --paper-table`` runs it and writes JSON + Markdown.
"""

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from social_pose_diffusion.core.atomic import write_bytes, write_json
from social_pose_diffusion.evaluation.metrics import timing
from social_pose_diffusion.evaluation.offline import (
    chunk_metrics,
    group_frame,
    invitation_test,
    rollouts,
    start_agent,
)
from social_pose_diffusion.learning.dataset import load_sessions
from social_pose_diffusion.learning.train import make_config, train
from social_pose_diffusion.observation.raster import IMAGE_SIZE
from social_pose_diffusion.policy import FAMILIES

STYLES = ('teacher', 'musician', 'music_teacher')
ENCODERS = ('raw', 'plotted', 'vector')
# control: the raw-image network fed a blank frame, i.e. what an image adds to proprioception
NO_IMAGE = 'none'
BLANK = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 255, np.uint8)
# (policy, sampler, steps, row label); the diffusion model is trained once and sampled two ways.
ROWS = (
    ('diffusion', 'diffusion_x', None, 'Diffusion-X T=50+M=8'),
    ('diffusion', 'ddim', 10, 'DDIM 10 (same model)'),
    ('flow', 'euler', 2, 'flow Euler 2'),
    ('flow', 'euler', 4, 'flow Euler 4 (same model)'),
    ('bc', 'direct', None, 'MSE-BC'),
    ('dbc', 'direct', None, 'DBC'),
)
FULL = {
    'seconds': 120.0,
    'steps': {'vector': 5000, 'plotted': 2000, 'raw': 2000},
    'k': 4,
    'timed': 15,
    'invite_k': 32,
    'starts': 10,
    'replan': 2,
    'copies': 4,
}
ROLLOUT_CELLS = {('vector', 'euler'), ('vector', 'ddim')}  # (encoder, sampler) run open loop
INVITATION_ENCODER = 'vector'  # result 4 is checked on the vector-encoder policies
BASELINE_ENCODER = 'raw'  # improvements are relative to the raw-image policy of the same row
QUICK = {
    'seconds': 40.0,
    'steps': {'vector': 40, 'plotted': 20, 'raw': 20},
    'k': 2,
    'timed': 3,
    'invite_k': 8,
    'starts': 1,
    'replan': 2,
    'copies': 1,
}


def _plan_times(policy, session, sampler, steps, frames, raw_frame):
    """Per-frame agent.plan time on ``frames`` held-out frames, one at a time."""
    t0 = len(session) - frames - policy.config.horizon - 1
    agent = start_agent(policy, session, t0, sampler=sampler, steps=steps)
    times = []
    for t in range(t0, t0 + frames):
        start = time.perf_counter()
        plan = agent.plan(group_frame(session, t), image=raw_frame(t) if raw_frame else None)
        times.append(time.perf_counter() - start)
        agent.commit(plan.stamps_ns[0], plan.poses[0])
    return timing(times)


def _models():
    """(encoder, policy) pairs to train.

    Flow only with the vector encoder (our fast configuration), and the
    no-image control with Diffusion-X.
    """
    return [
        (e, p)
        for e in ENCODERS
        for p in ('diffusion', 'flow', 'bc', 'dbc')
        if p != 'flow' or e == 'vector'
    ] + [(NO_IMAGE, 'diffusion')]


def _blank(t):
    """Frame ``t`` of the no-image control: always white."""
    return BLANK


def run_grid(budget, device='cpu', seed=0, test_seed=1000, progress=True):
    """Train and evaluate every cell; returns the list of row dicts."""
    sessions, _, raw = load_sessions(
        styles=STYLES, seconds=budget['seconds'], seed=seed, raw=True, copies=budget['copies']
    )
    tests, _, raw_tests = load_sessions(
        styles=STYLES, seconds=budget['seconds'], seed=test_seed, raw=True
    )
    frames = {'raw': (raw, raw_tests), NO_IMAGE: ([_blank] * len(sessions), [_blank] * len(tests))}
    rows = []
    for encoder, kind in tqdm(_models(), desc='paper table', unit='model', disable=not progress):
        network = 'raw' if encoder == NO_IMAGE else encoder
        train_frames, test_frames = frames.get(encoder, (None, None))
        config = make_config(
            sessions, encoder=network, policy=kind, steps=10 if kind == 'diffusion' else 2
        )
        start = time.perf_counter()
        policy, log = train(
            config,
            sessions,
            train_steps=budget['steps'][network],
            device=device,
            seed=seed,
            raw_frames=train_frames,
            image_stride=3,
            progress=False,
        )
        train_s = time.perf_counter() - start
        for cell in ROWS:
            p, sampler, steps, label = cell
            if p != kind or (encoder == NO_IMAGE and cell != ROWS[0]):  # control: Diffusion-X
                continue
            k = budget['k'] if config.family.generative else 1
            row = {
                'encoder': encoder,
                'policy': kind,
                'sampler': sampler,
                'label': label,
                'evaluations': policy.sampler_evaluations(sampler, steps),
                'train_steps': budget['steps'][network],
                'train_s': train_s,
                'final_loss': float(np.mean(log[-50:])),
                'styles': {},
            }
            for i, style in enumerate(STYLES):
                rf, rt = (train_frames[i], test_frames[i]) if train_frames else (None, None)
                cell = chunk_metrics(policy, sessions[i], k, sampler, steps, rf)
                cell['time'] = _plan_times(
                    policy, sessions[i], sampler, steps, budget['timed'], rf
                )
                cell['invitation'] = invitation_test(
                    policy, tests[i], budget['invite_k'], sampler, steps, raw_frame=rt
                )
                if (encoder, sampler) in ROLLOUT_CELLS:
                    cell['rollout'] = rollouts(
                        policy,
                        sessions[i],
                        budget['starts'],
                        replan=budget['replan'],
                        sampler=sampler,
                        steps=steps,
                        samples=budget['k'],
                    )
                row['styles'][style] = cell
            rows.append(row)
    return rows


def _pooled_invitation(row):
    """The invitation test pooled over the three styles' onsets.

    Shares are weighted by gesture counts.
    """
    cells = [c['invitation'] for c in row['styles'].values() if c.get('invitation')]
    if not cells:
        return {}
    gestures = np.array([c['samples'] * c['gesture_rate'] for c in cells])
    onsets = np.array([c['onsets'] for c in cells], np.float64)
    out = {
        key: float(np.average([c[key] for c in cells], weights=gestures))
        if gestures.sum()
        else 0.0
        for key in ('left', 'right', 'between')
    }
    out['gesture_rate'] = float(gestures.sum() / sum(c['samples'] for c in cells))
    out['both_hands'] = float(np.average([c['both_hands'] for c in cells], weights=onsets))
    out['onsets'] = int(onsets.sum())
    out['met'] = bool(min(out['left'], out['right']) >= 0.3)
    return out


def findings(rows: list[dict]) -> dict:
    """Results 1-5 the paper table checks (see :func:`markdown`), computed on the grid."""
    by = {(r['encoder'], r['label']): r for r in rows}
    dx = ROWS[0][3]
    m = lambda e, label, st: by[(e, label)]['styles'][st]['mpjpe_one_step']  # noqa: E731
    out = {}
    out['1_plotted_lt_raw'] = {
        st: {
            'raw': m('raw', dx, st),
            'plotted': m('plotted', dx, st),
            'no_image': m(NO_IMAGE, dx, st),
            'improvement_pct': 100 * (1 - m('plotted', dx, st) / m('raw', dx, st)),
            'met': bool(m('plotted', dx, st) < m('raw', dx, st)),
        }
        for st in STYLES
    }
    out['2_vector_le_plotted'] = {
        st: {
            'plotted': m('plotted', dx, st),
            'vector': m('vector', dx, st),
            'met': bool(m('vector', dx, st) <= m('plotted', dx, st)),
        }
        for st in STYLES
    }
    fast = {}
    for r in rows:
        if FAMILIES[r['policy']].generative and r['evaluations'] <= 10:
            e, cells, ref = r['encoder'], r['styles'], by[(r['encoder'], dx)]['styles']
            fast[f'{e}/{r["label"]}'] = {
                how: {st: 100 * (cells[st][key] / ref[st][key] - 1) for st in STYLES}
                for how, key in (
                    ('one_sample', 'mpjpe_one_step'),
                    ('medoid', 'mpjpe_one_step_medoid'),
                )
            }
    out['3_fast_within_5pct_of_diffusion_x'] = {
        'excess_pct': fast,
        'met_by': [k for k, v in fast.items() if max(v['medoid'].values()) <= 5.0],
    }
    inv = {
        f'{r["encoder"]}/{r["label"]}': _pooled_invitation(r)
        for r in rows
        if r['encoder'] == INVITATION_ENCODER
    }
    out['4_invitation_hands'] = inv
    roll = {}
    for r in rows:
        for st, c in r['styles'].items():
            ro = c.get('rollout') or {}
            if ro.get('mpjpe'):
                # the longest horizon that fit the held-out time (10 s in the full table)
                horizon = max(ro['mpjpe'], key=lambda h: float(h.rstrip('s')))
                roll[f'{r["encoder"]}/{r["label"]}/{st}'] = {
                    'bone_length_error_pct': 100 * ro['bone_length_error'],
                    'horizon': horizon,
                    'mpjpe': ro['mpjpe'][horizon],
                    'hold': ro['hold_baseline'][horizon],
                    'noise_floor': ro['noise_floor'],
                    'met': bool(
                        ro['bone_length_error'] < 0.02
                        and ro['mpjpe'][horizon] <= ro['noise_floor']
                    ),
                }
    out['5_rollouts'] = roll
    return out


def markdown(table: dict) -> str:
    """The paper-style Markdown table."""
    rows, f = table['rows'], table['findings']
    lines = [
        '# Paper table (simulated sessions, one run)',
        '',
        f'Sessions: {table["budget"]["copies"]} of {table["seconds"]:.0f} s per style '
        f'(seeds from {table["seed"]}), trained on the first 80 % of all of them (+ mirror '
        'images), evaluated per style on the last 20 % of the first; '
        f'invitations on held-out sessions (seeds from {table["test_seed"]}). '
        f'Total run time {table["run_s"] / 60:.1f} min on {table["machine"]}.',
        '',
        'MPJPE = teacher-forced one-step error of one sample (normalised equirect units, u '
        'wraps); improvement vs raw with the same sampler/policy; medoid = the same for the '
        f'medoid of {table["budget"]["k"]} samples, the plan the agent executes; '
        'ms = agent.plan per frame (batch 1, p95 in brackets). Representation `none` is a '
        'control: the raw-image network trained and evaluated on a blank frame, so it sees only '
        "the facilitator's own history.",
        '',
        f'Rollouts (result 5): {table["budget"]["starts"]} starts per style, 10 s open loop, '
        f'the agent run as the policy node runs it ({table["budget"]["k"]} plans per step, '
        f'medoid executed, a new plan every {table["budget"]["replan"]} frames); noise floor = '
        'mean distance between two true poses at random held-out times. Invitations (result 4): '
        f'{table["budget"]["invite_k"]} chunks sampled per onset '
        '(see README, evaluation).',
        '',
        '| representation | policy / sampler | evals | '
        + ' | '.join(f'{s} MPJPE | impr. %' for s in STYLES)
        + ' | medoid MPJPE (mean) | ms/frame | chunk MPJPE (mean) |',
        '|' + '---|' * (4 + 2 * len(STYLES) + 2),
    ]
    base = {(r['label']): r for r in rows if r['encoder'] == BASELINE_ENCODER}
    for r in rows:
        cells = []
        for st in STYLES:
            v = r['styles'][st]['mpjpe_one_step']
            ref = base.get(r['label'])
            cells += [
                f'{v:.6f}',
                f'{100 * (1 - v / ref["styles"][st]["mpjpe_one_step"]):+.1f}' if ref else '—',
            ]
        t = np.mean([c['time']['mean_ms'] for c in r['styles'].values()])
        p = np.mean([c['time']['p95_ms'] for c in r['styles'].values()])
        chunk = np.mean([c['mpjpe_chunk'] for c in r['styles'].values()])
        med = np.mean([c['mpjpe_one_step_medoid'] for c in r['styles'].values()])
        lines.append(
            f'| {r["encoder"]} | {r["label"]} | {r["evaluations"]} | '
            + ' | '.join(cells)
            + f' | {med:.6f} | {t:.1f} ({p:.1f}) | {chunk:.5f} |'
        )
    lines += ['', '## Findings', '']
    for st, v in f['1_plotted_lt_raw'].items():
        lines.append(
            f'- (1) {st}: plotted {v["plotted"]:.6f} vs raw {v["raw"]:.6f} '
            f'({v["improvement_pct"]:+.1f} %) — {"met" if v["met"] else "NOT met"}; '
            f'no image (control) {v["no_image"]:.6f}'
        )
    for st, v in f['2_vector_le_plotted'].items():
        lines.append(
            f'- (2) {st}: vector {v["vector"]:.6f} vs plotted {v["plotted"]:.6f} — '
            f'{"met" if v["met"] else "NOT met"}'
        )
    met_by = f['3_fast_within_5pct_of_diffusion_x']['met_by']
    for k, v in f['3_fast_within_5pct_of_diffusion_x']['excess_pct'].items():
        lines.append(
            f'- (3) {k} vs Diffusion-X, as the agent runs both '
            f'(medoid of {table["budget"]["k"]}): '
            + ', '.join(f'{st} {x:+.1f} %' for st, x in v['medoid'].items())
            + '; one sample each: '
            + ', '.join(f'{st} {x:+.1f} %' for st, x in v['one_sample'].items())
            + f' — {"met" if k in met_by else "NOT met"}'
        )
    for k, v in f['4_invitation_hands'].items():
        if v:
            lines.append(
                f'- (4) {k}: of {100 * v["gesture_rate"]:.0f} % gesturing samples '
                f'left {v["left"]:.2f}, '
                f'right {v["right"]:.2f}, in-between {v["between"]:.2f}; '
                "both hands among one onset's "
                f'samples at {100 * v["both_hands"]:.0f} % of {v["onsets"]} onsets — '
                f'{"met" if v["met"] else "NOT met"}'
            )
    for k, v in f['5_rollouts'].items():
        lines.append(
            f'- (5) {k}: bone error {v["bone_length_error_pct"]:.4f} %, '
            f'{v["horizon"]} MPJPE {v["mpjpe"]:.5f} '
            f'(hold {v["hold"]:.5f}, noise floor {v["noise_floor"]:.5f}) — '
            f'{"met" if v["met"] else "NOT met"}'
        )
    return '\n'.join(lines) + '\n'


def run_table(
    out: str | Path, quick: bool = False, device: str = 'cpu', seed: int = 0, test_seed: int = 1000
) -> dict:
    """Run the grid and write ``out`` (.json) and its .md; returns the table dict."""
    from social_pose_diffusion.bench import machine

    budget = QUICK if quick else FULL
    start = time.perf_counter()
    rows = run_grid(budget, device, seed, test_seed)
    mach = machine()
    table = {
        'seconds': budget['seconds'],
        'seed': seed,
        'test_seed': test_seed,
        'budget': budget,
        'rows': rows,
        'findings': findings(rows),
        'run_s': time.perf_counter() - start,
        'machine': f'{mach["cpu_count"]} CPUs, torch {mach["torch"]}, '
        f'{mach["torch_threads"]} thread(s)',
    }
    write_json(out, table)
    md = Path(out).with_suffix('.md')
    write_bytes(md, markdown(table).encode())
    print(markdown(table))
    print(f'wrote {out} and {md}')
    return table
