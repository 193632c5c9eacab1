"""The simulated world written as a rosbag2 and read back with rosbags."""

import numpy as np
import pytest

from social_pose_diffusion.cli.main import main
from social_pose_diffusion.core import skeleton
from social_pose_diffusion.msgs.keypoint_cloud import stamp_ns
from social_pose_diffusion.observation.features import motion_memory
from social_pose_diffusion.sources import bags
from social_pose_diffusion.sources.sim import simulate, write_session_bag
from social_pose_diffusion.sources.sim.world import INVITE_MEMORY_S

pytestmark = [pytest.mark.slow]

FPS, SECONDS = 30.0, 20.0


@pytest.fixture(scope='module')
def session_bag(tmp_path_factory):
    out = tmp_path_factory.mktemp('sim') / 'session'
    assert (
        main(
            [
                'simulate',
                '--style',
                'musician',
                '--seconds',
                str(SECONDS),
                '--seed',
                '1',
                '--images',
                'both',
                '--out',
                str(out),
            ]
        )
        == 0
    )
    return out


def test_bag_has_documented_topics_counts_and_stamps(session_bag):
    frames = int(SECONDS * FPS)
    assert bags.topic_counts(session_bag) == {
        '/camera/image_raw': ('sensor_msgs/msg/Image', frames),
        '/camera/image_raw/compressed': ('sensor_msgs/msg/CompressedImage', frames),
        '/humans/keypoints': ('sensor_msgs/msg/PointCloud2', frames),
        '/facilitator/ground_truth': ('sensor_msgs/msg/PointCloud2', frames),
        '/session/state': ('std_msgs/msg/String', frames),
        '/session/info': ('std_msgs/msg/String', 1),
    }
    stamps = {}
    for topic, log_time, msg in bags.read_messages(session_bag):
        if hasattr(msg, 'header'):
            assert stamp_ns(msg) == log_time, topic
            assert msg.header.frame_id == 'camera'
            stamps.setdefault(topic, []).append(log_time)
    reference = stamps['/facilitator/ground_truth']
    assert all(s == reference for s in stamps.values())
    assert np.allclose(np.diff(reference), 1e9 / FPS, atol=1)


def test_raw_and_compressed_images_agree(session_bag):
    raw = dict(bags.iter_images(session_bag, '/camera/image_raw'))
    compressed = dict(bags.iter_images(session_bag, '/camera/image_raw/compressed'))
    assert raw.keys() == compressed.keys()
    stamp = sorted(raw)[100]
    assert raw[stamp].shape == compressed[stamp].shape == (480, 960, 3)
    assert np.abs(raw[stamp].astype(int) - compressed[stamp]).mean() < 6  # jpeg


def test_session_reads_back_and_skeletons_keep_bone_lengths(session_bag):
    session = bags.read_session(session_bag)
    assert len(session) == int(SECONDS * FPS)
    assert session.info['style'] == 'musician' and session.fps == FPS
    assert session.participants.shape == (len(session), 4, skeleton.NUM_JOINTS, 3)
    assert np.all((session.facilitator[..., 0] >= 0) & (session.facilitator[..., 0] < 1))
    for person in [session.facilitator] + [session.participants[:, p] for p in range(4)]:
        lengths = skeleton.bone_lengths(person[..., :2])
        assert np.abs(lengths - lengths[0]).max() < 1e-4 * lengths.mean()


def _head_turn(session):
    """Facilitator nose azimuth relative to the middle of its shoulders (wrapped u)."""
    f = session.facilitator
    shoulders = (
        f[:, skeleton.JOINT['left_shoulder'], 0]
        + skeleton.wrap_u(
            f[:, skeleton.JOINT['right_shoulder'], 0] - f[:, skeleton.JOINT['left_shoulder'], 0]
        )
        / 2
    )
    return skeleton.wrap_u(f[:, skeleton.JOINT['nose'], 0] - shoulders)


@pytest.mark.parametrize('style', ['teacher', 'musician', 'music_teacher'])
def test_facilitator_turns_toward_the_speaker(style):
    session = simulate(style, 5, 90.0, FPS, seed=3)
    seats = np.array(session.info['participant_seats_u'])
    talking = session.speaker >= 0
    bearing = np.sin(
        np.pi
        * skeleton.wrap_u(seats[session.speaker[talking]] - session.info['facilitator_seat_u'])
    )
    turn = _head_turn(session)[talking]
    assert np.corrcoef(bearing, turn)[0, 1] > 0.6
    assert set(np.unique(session.speaker)) == {-1, 0, 1, 2, 3, 4}


def test_invitations_use_either_hand_and_styles_differ_in_amplitude():
    hands, motion = [], {}
    for seed in range(10):
        style = ('teacher', 'musician')[seed % 2]
        session = simulate(style, 4, 240.0, FPS, seed=seed)
        starts = np.flatnonzero((session.invite >= 0) & (np.r_[-1, session.invite[:-1]] < 0))
        hands += list(session.invite_hand[starts])
        motion[style] = np.abs(np.diff(session.facilitator[..., :2], axis=0)).mean()
    assert len(hands) >= 100 and 0.4 <= np.mean(hands) <= 0.6  # a fair coin, > 2 sigma margin
    assert motion['teacher'] > 1.5 * motion['musician']


def test_the_invitee_is_whoever_spoke_least_in_a_fading_memory_the_camera_can_keep():
    fade = np.exp(-1.0 / (INVITE_MEMORY_S * FPS))
    onsets = known = 0
    for seed in range(6):
        session = simulate(('teacher', 'musician', 'music_teacher')[seed % 3], 4, 300.0, FPS, seed)
        memory = motion_memory(session.participants, FPS, [INVITE_MEMORY_S])[..., 0]
        for t in session.invitation_onsets():
            past = np.arange(t)
            spoken = [(fade ** (t - past))[session.speaker[past] == p].sum() for p in range(4)]
            assert spoken[session.invite[t]] == min(spoken)
            onsets += 1
            known += np.argmin(memory[t]) == session.invite[t]
    # the people's arm motion, remembered as the policy's observation does, names the invitee
    assert onsets >= 80 and known / onsets > 0.8


def test_same_seed_same_session_other_seed_differs():
    a, b, c = (simulate('teacher', 4, 10.0, FPS, seed=s) for s in (7, 7, 8))
    assert np.array_equal(a.facilitator, b.facilitator) and np.array_equal(a.speaker, b.speaker)
    assert not np.array_equal(a.facilitator, c.facilitator)


def test_sqlite3_bags_read_the_same(tmp_path):
    session = simulate('teacher', 3, 2.0, FPS, seed=2)
    write_session_bag(session, tmp_path / 'mcap', progress=False)
    with bags.SessionWriter(tmp_path / 'sqlite', storage='sqlite3') as out:
        for topic, _, msg in bags.read_messages(tmp_path / 'mcap'):
            out.write(
                topic,
                msg.__msgtype__,
                stamp_ns(msg) if hasattr(msg, 'header') else session.stamps_ns[0],
                msg,
            )
    a, b = bags.read_session(tmp_path / 'mcap'), bags.read_session(tmp_path / 'sqlite')
    assert np.array_equal(a.facilitator, b.facilitator) and np.array_equal(
        a.participants, b.participants
    )


@pytest.mark.parametrize(
    'argv, message',
    [
        (['simulate', '--participants', '9', '--out', 'x'], 'must be 3 to 6'),
        (['simulate', '--seconds', '-1', '--out', 'x'], 'must be positive'),
        (['simulate', '--style', 'dancer', '--out', 'x'], 'invalid choice'),
    ],
)
def test_simulate_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_training_can_read_the_group_as_perception_saw_it(tmp_path):
    """``train --group-topic``: the bag's perceived group beside its demonstrated facilitator."""
    from social_pose_diffusion.core.frames import GroupFrame
    from social_pose_diffusion.learning.dataset import load_sessions
    from social_pose_diffusion.msgs.topics import GROUP_TOPIC

    session = simulate('teacher', 3, 2.0, FPS, seed=2)
    write_session_bag(session, tmp_path / 'sim', 64, 32, progress=False)
    shifted = session.participants.copy()
    shifted[..., 1] += 0.01  # a detector that finds every joint a little lower
    with bags.SessionWriter(tmp_path / 'seen') as out:
        for topic, _, msg in bags.read_messages(tmp_path / 'sim'):
            stamp = stamp_ns(msg) if hasattr(msg, 'header') else session.stamps_ns[0]
            out.write(topic, msg.__msgtype__, stamp, msg)
        for t, stamp in enumerate(session.stamps_ns):
            frame = GroupFrame(int(stamp), session.participant_ids + 10, shifted[t])
            out.keypoints(GROUP_TOPIC + '/detected', frame)
    (plain,), _, _ = load_sessions([tmp_path / 'seen'])
    (seen,), _, _ = load_sessions([tmp_path / 'seen'], group_topic=GROUP_TOPIC + '/detected')
    np.testing.assert_allclose(plain.participants, session.participants, atol=1e-6)
    np.testing.assert_allclose(seen.participants[..., 1], shifted[..., 1], atol=1e-6)
    assert list(seen.participant_ids) == list(session.participant_ids + 10)
    np.testing.assert_array_equal(seen.facilitator, plain.facilitator)
