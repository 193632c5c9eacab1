"""`social-pose extract` on a real-photo composite.

Image to JSON/overlay, bag to bag, argument errors.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from social_pose_diffusion.cli.main import main
from social_pose_diffusion.core.frames import GroupFrame
from social_pose_diffusion.perception.composite import blank_panorama, place_photo
from social_pose_diffusion.sources.bags import (
    FACILITATOR_TOPIC,
    GROUP_TOPIC,
    SessionWriter,
    cloud_to_frame,
    read_messages,
    topic_counts,
)

pytestmark = [pytest.mark.mediapipe]

DATA = Path(__file__).parent / 'data'
ASTRONAUT_U, CAMERAMAN_U = 0.5, 0.8


@pytest.fixture(scope='module')
def pano():
    image = blank_panorama(480)
    place_photo(image, cv2.imread(str(DATA / 'person_astronaut.jpg')), ASTRONAUT_U, 0.5, 40)
    place_photo(image, cv2.imread(str(DATA / 'person_cameraman.jpg')), CAMERAMAN_U, 0.5, 40)
    return image


def test_image_to_json_and_overlay(tmp_path, pano, capsys):
    cv2.imwrite(str(tmp_path / 'pano.jpg'), pano)
    assert (
        main(
            [
                'extract',
                '--image',
                str(tmp_path / 'pano.jpg'),
                '--out',
                str(tmp_path / 'kp.json'),
                '--overlay',
                str(tmp_path / 'overlay.png'),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / 'kp.json').read_text())
    assert report['width'] == 960 and len(report['joints']) == 13 and len(report['people']) == 2
    noses = sorted(p['keypoints'][0][0] for p in report['people'])
    assert abs(noses[0] - ASTRONAUT_U) < 0.03 and abs(noses[1] - CAMERAMAN_U) < 0.03
    overlay = cv2.imread(str(tmp_path / 'overlay.png'))
    assert overlay.shape == pano.shape and (overlay != pano).any()
    assert '2 people' in capsys.readouterr().out


@pytest.mark.parametrize(
    'content, message',
    [(b'not a jpeg at all', 'not a readable image'), (None, 'not equirectangular')],
)
def test_bad_image_files_give_a_clear_error(tmp_path, capsys, content, message):
    path = tmp_path / 'bad.jpg'
    if content is None:
        cv2.imwrite(str(path), np.zeros((300, 300, 3), np.uint8))
    else:
        path.write_bytes(content)
    assert main(['extract', '--image', str(path), '--out', str(tmp_path / 'kp.json')]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / 'kp.json').exists()


def write_bag(path, pano, frames=2, with_keypoints=False):
    with SessionWriter(path) as writer:
        for k in range(frames):
            writer.image(k * 100_000_000, pano)
            writer.text('/session/state', k * 100_000_000, {'stamp_ns': k * 100_000_000})
            if with_keypoints:
                writer.keypoints(GROUP_TOPIC, GroupFrame(k * 100_000_000))


def test_bag_gets_participants_and_facilitator_topics(tmp_path, pano):
    write_bag(tmp_path / 'in', pano)
    assert (
        main(
            [
                'extract',
                '--bag',
                str(tmp_path / 'in'),
                '--out',
                str(tmp_path / 'out'),
                '--facilitator-seat',
                str(CAMERAMAN_U),
            ]
        )
        == 0
    )
    counts = topic_counts(tmp_path / 'out')
    assert counts['/camera/image_raw/compressed'][1] == 2 and counts['/session/state'][1] == 2
    assert counts[GROUP_TOPIC][1] == 2 and counts[FACILITATOR_TOPIC][1] == 2
    for topic, _, msg in read_messages(tmp_path / 'out', [GROUP_TOPIC, FACILITATOR_TOPIC]):
        frame = cloud_to_frame(msg)
        assert len(frame) == 1
        expected = CAMERAMAN_U if topic == FACILITATOR_TOPIC else ASTRONAUT_U
        assert abs(frame.keypoints[0, 0, 0] - expected) < 0.03
        if topic == FACILITATOR_TOPIC:
            assert list(frame.ids) == [0]


def test_bag_with_keypoints_already_gets_a_separate_topic(tmp_path, pano):
    write_bag(tmp_path / 'in', pano, frames=1, with_keypoints=True)
    assert (
        main(
            [
                'extract',
                '--bag',
                str(tmp_path / 'in'),
                '--out',
                str(tmp_path / 'out'),
                '--discovery-period',
                '0',
            ]
        )
        == 0
    )
    counts = topic_counts(tmp_path / 'out')
    assert counts[GROUP_TOPIC + '/detected'][1] == 1 and counts[GROUP_TOPIC][1] == 1
    assert FACILITATOR_TOPIC not in counts


def test_bag_of_unusable_frames_is_an_error_and_leaves_nothing(tmp_path, capsys):
    write_bag(tmp_path / 'in', np.zeros((100, 100, 3), np.uint8), frames=2)
    assert main(['extract', '--bag', str(tmp_path / 'in'), '--out', str(tmp_path / 'out')]) == 2
    assert (
        'no usable camera frame (2 skipped)' in capsys.readouterr().err
        and not (tmp_path / 'out').exists()
    )
    assert (
        main(
            [
                'extract',
                '--bag',
                str(tmp_path / 'in'),
                '--out',
                str(tmp_path / 'out'),
                '--topic',
                '/session/state',
            ]
        )
        == 2
    )
    assert 'no Image or CompressedImage topic /session/state' in capsys.readouterr().err


@pytest.mark.parametrize(
    'args, message',
    [
        (['--image', 'x.jpg', '--bag', 'b'], 'not allowed with'),
        (['--bag', 'b', '--facilitator-seat', '1.5'], 'must be an azimuth'),
        (
            ['--bag', 'b', '--facilitator-seat', '0.5', '--seat-tolerance', '0'],
            'must be in (0, 0.5]',
        ),
        (['--bag', 'b', '--facilitator-seat', '0.2', '--facilitator-id', '3'], 'not allowed with'),
        (['--image', 'x.jpg', '--facilitator-id', '3'], 'only with --bag'),
        (['--bag', 'b', '--overlay', 'o.png'], 'only applies with --image'),
        (['--image', 'missing.jpg'], 'no image at'),
        (['--bag', 'missing_bag'], 'no bag at'),
    ],
)
def test_argument_errors_are_clear(tmp_path, capsys, args, message):
    try:
        code = main(['extract', '--out', str(tmp_path / 'o')] + args)
    except SystemExit as exc:  # argparse
        code = exc.code
    assert code == 2 and message in capsys.readouterr().err
