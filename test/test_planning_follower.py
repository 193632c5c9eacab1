"""The plan follower and the agent's time-based history on a fake clock (no ROS, no wall clock)."""

import numpy as np
import pytest

from social_pose_diffusion.core.skeleton import NUM_JOINTS, joint_distance
from social_pose_diffusion.learning.train import make_config
from social_pose_diffusion.observation.features import proprioception
from social_pose_diffusion.planning.agent import FacilitatorAgent
from social_pose_diffusion.planning.follower import PlanFollower
from social_pose_diffusion.policy import Policy
from social_pose_diffusion.sources.sim import simulate

PERIOD = 33_333_333  # 30 Hz in ns
T0 = 10**12


def plan(start_ns, n=8, u0=0.3, du=0.01, spread=0.0):
    """``n`` poses one period apart from ``start_ns``: every joint moves ``du`` in u per entry."""
    stamps = start_ns + PERIOD * np.arange(n, dtype=np.int64)
    poses = np.zeros((n, NUM_JOINTS, 2))
    poses[..., 0] = (u0 + du * np.arange(n))[:, None] % 1.0
    poses[..., 1] = 0.5
    return stamps, poses, np.full((n, NUM_JOINTS), spread), start_ns - PERIOD


def test_interpolates_between_entries_across_the_seam():
    f = PlanFollower(PERIOD)
    stamps, poses, spread, obs = plan(T0, u0=0.995, du=0.004)
    spread[1] = 1.0
    assert f.set_plan(stamps, poses, spread, obs)
    tick = f.tick(T0 + PERIOD // 2)  # halfway between u 0.995 and 0.999
    assert tick.pose[0, 0] == pytest.approx(0.997, abs=1e-6) and tick.spread[0] == pytest.approx(
        0.5, abs=1e-6
    )
    tick = f.tick(
        T0 + PERIOD + PERIOD // 4
    )  # a quarter from 0.999 to 0.003: over the seam, not back
    assert tick.pose[0, 0] == pytest.approx(0.0, abs=1e-6) or tick.pose[0, 0] == pytest.approx(
        1.0, abs=1e-6
    )
    assert tick.obs_ns == obs
    assert f.late_dropped == 0 and f.held_exhausted == 0 and f.held_no_plan == 0


def test_drops_entries_late_at_the_first_tick_only():
    f = PlanFollower(PERIOD)
    stamps, poses, spread, obs = plan(T0)
    f.set_plan(stamps, poses, spread, obs)
    tick = f.tick(T0 + 2 * PERIOD + PERIOD // 2)  # entries 0 and 1 passed while planning
    assert f.late_dropped == 2
    assert tick.pose[0, 0] == pytest.approx(0.3 + 0.025, abs=1e-6)
    f.tick(T0 + 4 * PERIOD + PERIOD // 2)  # later ticks skipping entries are not late drops
    assert f.late_dropped == 2


def test_holds_the_last_pose_when_the_plan_runs_out_and_before_the_first():
    f = PlanFollower(PERIOD)
    assert f.tick(T0) is None and f.held_no_plan == 0  # nothing to hold yet
    stamps, poses, spread, obs = plan(T0, n=3)
    f.set_plan(stamps, poses, spread, obs)
    f.tick(T0 + PERIOD)
    for k in range(3, 6):
        tick = f.tick(T0 + k * PERIOD)
        np.testing.assert_array_equal(tick.pose, poses[-1])
    assert f.held_exhausted == 3


def test_a_plan_that_starts_in_the_future_holds_the_current_pose_until_then():
    f = PlanFollower(PERIOD)
    stamps, poses, spread, obs = plan(T0 + 5 * PERIOD)
    f.set_plan(stamps, poses, spread, obs)
    np.testing.assert_array_equal(
        f.tick(T0).pose, poses[0]
    )  # nothing executed yet: its first pose
    first = plan(T0 - 3 * PERIOD, u0=0.7)
    f.set_plan(*first)
    held = f.tick(T0).pose
    f.set_plan(stamps, poses, spread, obs)
    np.testing.assert_array_equal(f.tick(T0 + PERIOD).pose, held)  # hold until the plan begins
    assert f.late_dropped == 3  # the first plan's entries before T0, nothing of the future one
    assert f.tick(T0 + 5 * PERIOD).pose[0, 0] == pytest.approx(0.3, abs=1e-9)
    assert f.late_dropped == 3


def test_time_going_back_forgets_the_plan_and_the_pose():
    f = PlanFollower(PERIOD)
    f.set_plan(*plan(T0))
    assert f.went_back(T0 + PERIOD) == 0.0
    f.tick(T0 + PERIOD)
    assert f.went_back(T0 - 10**9) == pytest.approx(1.0 + PERIOD * 1e-9)
    assert f.time_resets == 1 and f.may_publish_early(T0 - 10**9 + 1)  # no last tick either
    assert f.tick(T0 - 10**9) is None


def test_a_non_finite_plan_is_refused_and_the_last_good_pose_held():
    f = PlanFollower(PERIOD)
    f.set_plan(*plan(T0))
    good = f.tick(T0 + PERIOD).pose
    stamps, poses, spread, obs = plan(T0 + 2 * PERIOD)
    poses[3, 4, 0] = np.nan
    assert not f.set_plan(stamps, poses, spread, obs) and f.refused == 1
    spread[0, 0] = np.inf
    assert not f.set_plan(stamps, plan(T0)[1], spread, obs) and f.refused == 2
    for k in range(2, 12):
        assert np.isfinite(f.tick(T0 + k * PERIOD).pose).all()
    assert f.tick(T0 + 12 * PERIOD).pose[0, 0] == pytest.approx(
        0.3 + 0.07, abs=1e-9
    )  # old plan's end
    assert not np.array_equal(good, f.last.pose)
    with pytest.raises(ValueError):
        PlanFollower(0.0)


def run_loop(follower, plan_times_ns, until_ns, publish_on_plan=True):
    """The policy node's control loop on a fake clock: a periodic tick, and each plan published
    at once (publish-on-plan) unless within a quarter period of the last tick, restarting the
    period from it."""
    published, next_tick, plans = [], T0, sorted(plan_times_ns)
    while next_tick < until_ns:
        if plans and plans[0] <= next_tick:
            at = plans.pop(0)
            follower.set_plan(*plan(at, n=8))
            if publish_on_plan and follower.may_publish_early(at):
                follower.tick(at)
                published.append(at)
                next_tick = at + PERIOD
            continue
        if follower.tick(next_tick) is not None:
            published.append(next_tick)
        next_tick += PERIOD
    return np.diff(published)


def test_publish_on_plan_keeps_intervals_between_a_quarter_and_one_period():
    rng = np.random.default_rng(0)
    arrivals = T0 + np.cumsum(rng.uniform(0.2, 1.4, 300) * PERIOD).astype(np.int64)
    intervals = run_loop(PlanFollower(PERIOD), arrivals, arrivals[-1])
    assert intervals.min() >= PERIOD / 4 and intervals.max() <= PERIOD
    assert 25e6 <= np.median(intervals) <= 45e6
    fixed = run_loop(PlanFollower(PERIOD), arrivals, arrivals[-1], publish_on_plan=False)
    assert (fixed == PERIOD).all()


def test_a_slow_planner_never_slows_the_loop():
    """Plans every 0.5 s: the loop keeps its period, holding the exhausted plan's last pose."""
    f = PlanFollower(PERIOD)
    arrivals = T0 + np.arange(1, 9) * 500_000_000
    intervals = run_loop(f, arrivals, T0 + 5 * 10**9)
    assert len(intervals) + 1 >= 3 * len(arrivals) and 25e6 <= np.median(intervals) <= 45e6
    assert f.held_exhausted > 0


def test_a_slow_control_period_still_publishes_each_plan_at_once():
    """A 2 s period: three plans 0.6 s apart are each published on arrival, not at a tick."""
    f = PlanFollower(60 * PERIOD)
    published = []
    for k in range(3):
        at = T0 + k * 600_000_000
        f.set_plan(*plan(at))
        if f.may_publish_early(at):
            f.tick(at)
            published.append(at)
    assert len(published) == 3


# -- the agent's proprioception from the executed poses, by time ------------------------------


def trajectory(t_s):
    """A smooth facilitator pose at time ``t_s`` (s): everybody sways and nods."""
    session = simulate('teacher', 3, 2.0, 30.0, seed=3)
    base = np.asarray(session.facilitator[0], np.float64)[:, :2]
    out = np.repeat(base[None], len(t_s), 0)
    out[..., 0] += 0.02 * np.sin(2 * np.pi * 0.7 * np.asarray(t_s))[:, None]
    out[..., 1] += 0.01 * np.cos(2 * np.pi * 1.1 * np.asarray(t_s))[:, None]
    return out


@pytest.fixture(scope='module')
def policy():
    session = simulate('teacher', 3, 12.0, 30.0, seed=3)
    return Policy(make_config([session], d_model=32, layers=1, heads=2, horizon=8)).eval()


def test_irregular_35_hz_commits_give_the_features_of_regular_30_hz_commits(policy):
    regular = FacilitatorAgent(policy, fps=30.0)
    irregular = FacilitatorAgent(policy, fps=30.0)
    counted = []
    t_regular = np.arange(0, 61) / 30.0
    rng = np.random.default_rng(1)
    t_irregular = np.cumsum(1 / rng.uniform(34.0, 36.0, 80))
    t_irregular = t_irregular[t_irregular < t_regular[-1]]
    t_irregular = np.append(t_irregular, t_regular[-1])  # both end at the same executed pose
    for agent, times in ((regular, t_regular), (irregular, t_irregular)):
        agent.reset(trajectory([0.0])[0])
        for t, pose in zip(times, trajectory(times)):
            agent.commit(int(round(T0 + t * 1e9)), pose)
        counted.append(trajectory(times[-policy.config.history - 1 :]))  # "the last K+1 commits"
    a, b = regular.history(), irregular.history()
    assert a.shape == (policy.config.history + 1, NUM_JOINTS, 2)
    np.testing.assert_allclose(a, trajectory(t_regular[-policy.config.history - 1 :]), atol=1e-12)
    assert joint_distance(a, b).max() < 2e-4  # linear interpolation between 35 Hz commits
    features = np.abs(proprioception(a) - proprioception(b)).max()
    by_count = np.abs(proprioception(counted[0]) - proprioception(counted[1])).max()
    assert features < 2e-4 < by_count / 5  # indexing by commit count is far off


def test_history_before_the_first_commit_is_the_reset_pose(policy):
    agent = FacilitatorAgent(policy, fps=30.0)
    start = trajectory([0.0])[0]
    agent.reset(start)
    np.testing.assert_array_equal(
        agent.history(), np.repeat(start[None], policy.config.history + 1, 0)
    )
    moved = trajectory([0.5])[0]
    agent.commit(T0, moved)
    hist = agent.history()
    np.testing.assert_array_equal(hist[-1], moved)
    np.testing.assert_array_equal(hist[:-1], np.repeat(start[None], policy.config.history, 0))
    agent.commit(T0, start)  # the same time again replaces the pose
    np.testing.assert_array_equal(agent.history()[-1], start)
    with pytest.raises(ValueError, match='go back'):
        agent.commit(T0 - 1, start)


# -- the controller: agent and follower as the policy node runs them ---------------------------


def group(stamp_ns):
    session = simulate('teacher', 3, 2.0, 30.0, seed=3)
    from social_pose_diffusion.core.frames import GroupFrame

    return GroupFrame(stamp_ns, session.participant_ids, session.participants[0])


def test_the_controller_starts_at_the_seat_commits_what_it_executed_and_restarts_on_a_jump(policy):
    from social_pose_diffusion.observation.features import centroid
    from social_pose_diffusion.planning.agent import seated
    from social_pose_diffusion.planning.follower import Controller

    starts = []
    control = Controller(lambda agent: starts.append(1) or seated(agent.neutral, 0.9))
    assert control.plan(group(T0), T0, 5e9) == 'stale'  # not started
    control.start(FacilitatorAgent(policy, fps=30.0), PERIOD)
    assert control.plan(group(T0), T0, 5e9) == 'planned' and len(starts) == 1
    assert centroid(control.agent.pose)[0] == pytest.approx(0.9, abs=1e-9)
    ticks = [control.tick(T0 + k * PERIOD)[0] for k in range(1, 4)]
    assert control.plan(group(T0 + 3 * PERIOD), T0 + 3 * PERIOD, 5e9) == 'planned'
    # The integrated pose committed; the one executed drawn back to the seat (planning.seat).
    anchor = control.agent.seat
    np.testing.assert_allclose(control.agent.pose - anchor.drift, ticks[-1].pose, atol=2e-5)
    assert control.tick(T0 + 4 * PERIOD, early=True)[0] is not None
    assert (
        control.tick(T0 + 4 * PERIOD + PERIOD // 8, early=True)[0] is None
    )  # quarter-period guard
    assert control.observed(T0) == 0.0 and control.observed(T0 - 10**9) == pytest.approx(1.0)
    assert control.tick(T0 + 5 * PERIOD)[0] is None  # the plan is gone with the old timeline
    assert control.plan(group(T0 - 10**9), T0, 50e9) == 'planned' and len(starts) == 2
    # A clock far from the observation's: re-timed by arrival, noted once per episode.
    assert control.plan(group(T0 - 10**9), T0 + 20 * 10**9, 5e9) == 'by arrival'
    assert control.plan(group(T0 - 10**9 + PERIOD), T0 + 21 * 10**9, 5e9) == 'planned'
    assert control.timed_by_arrival == 2


def test_the_controller_waits_for_a_start_and_holds_it_when_plans_are_not_finite(policy):
    from social_pose_diffusion.planning.follower import Controller

    known = []
    control = Controller(lambda agent: known[0] if known else None)
    agent = FacilitatorAgent(policy, fps=30.0)
    agent.max_speed[:] = np.nan  # as a model config with max_speed NaN makes it
    control.start(agent, PERIOD)
    assert control.plan(group(T0), T0, 5e9) == 'waiting' and control.tick(T0 + PERIOD)[0] is None
    known.append(trajectory([0.0])[0])
    assert control.plan(group(T0 + PERIOD), T0 + PERIOD, 5e9) == 'refused'
    for k in range(2, 6):
        tick, _ = control.tick(T0 + k * PERIOD)
        np.testing.assert_array_equal(tick.pose, known[0])  # the start, finite
    assert control.counts()['non-finite plans refused'] == 1


# -- the server: the policy node's model, agent and planning step, without ROS ----------------

STYLES = ('music_teacher', 'musician', 'teacher')


def test_the_server_serves_a_style_the_model_knows_and_refuses_others(tmp_path):
    from social_pose_diffusion.planning.agent import seated
    from social_pose_diffusion.planning.serving import PolicyServer

    session = simulate('teacher', 3, 12.0, 30.0, seed=3)
    config = make_config([session], d_model=32, layers=1, heads=2, horizon=8, styles=STYLES)
    Policy(config).save(tmp_path / 'styled.safetensors')
    reports = []
    server = PolicyServer(lambda agent: seated(agent.neutral, 0.5), lambda *r: reports.append(r))
    with pytest.raises(
        ValueError,
        match="style: style 'dancer' is not one the model knows "
        r'\(music_teacher, musician, teacher\)',
    ):
        server.load(str(tmp_path / 'styled'), 'cpu', style='dancer')
    assert server.policy is None
    assert 'flow/euler' in server.load(str(tmp_path / 'styled'), 'cpu', style='musician')
    assert server.problem('style', 'teacher') is None and server.problem('style', '') is None
    assert 'music_teacher, musician, teacher' in server.problem('style', 'dancer')
    assert 'samples with euler' in server.problem('sampler', 'ddim')
    assert server.start(PERIOD) > 0
    planned = server.plan(group(T0), T0, 5e9, samples=2, style='musician')
    assert planned is not None and planned[1] and server.control.agent.style == 'musician'
    assert server.control.agent.samples == 2
    assert server.tick(T0 + PERIOD) is not None and not reports
    server.stop()
    assert server.plan(group(T0 + PERIOD), T0 + PERIOD, 5e9) is None  # stopped
