"""Writing a simulated session as a rosbag2 (mcap) with the camera stream and the ground truth."""

from tqdm import tqdm

from social_pose_diffusion.core.frames import GroupFrame, single_person
from social_pose_diffusion.msgs.topics import (
    FACILITATOR_TOPIC,
    GROUP_TOPIC,
    INFO_TOPIC,
    STATE_TOPIC,
)
from social_pose_diffusion.sources.bags import SessionWriter
from social_pose_diffusion.sources.sim.render import Renderer


def write_session_bag(
    session, out, width=960, height=480, image_format='compressed', progress=True
):
    """Render ``session`` and write it to the bag directory ``out`` (must not exist)."""
    renderer = Renderer(session, width, height, seed=int(session.info.get('seed', 0)))
    hands = {0: 'left', 1: 'right'}
    with SessionWriter(out, image_format=image_format) as bag:
        bag.text(INFO_TOPIC, session.stamps_ns[0], session.info)
        for t in tqdm(range(len(session)), desc='simulate', unit='frame', disable=not progress):
            stamp = int(session.stamps_ns[t])
            bag.image(stamp, renderer.frame(t))
            bag.keypoints(
                GROUP_TOPIC, GroupFrame(stamp, session.participant_ids, session.participants[t])
            )
            bag.keypoints(FACILITATOR_TOPIC, single_person(stamp, session.facilitator[t]))
            bag.text(
                STATE_TOPIC,
                stamp,
                {
                    'stamp_ns': stamp,
                    'speaker': int(session.speaker[t]),
                    'invite': int(session.invite[t]),
                    'attend': int(session.attend[t]),
                    'hand': hands.get(int(session.invite_hand[t])),
                },
            )
