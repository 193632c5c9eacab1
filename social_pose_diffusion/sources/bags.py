"""rosbag2 sessions (mcap or sqlite3) read and written with `rosbags` and the Kilted typestore.

Topics of a session bag (layouts in the README):

- ``/camera/image_raw`` (sensor_msgs/Image, bgr8) and/or
  ``/camera/image_raw/compressed`` (sensor_msgs/CompressedImage, jpeg);
- ``/humans/keypoints`` (sensor_msgs/PointCloud2): the participants;
- ``/facilitator/ground_truth`` (sensor_msgs/PointCloud2): the facilitator, id 0;
- ``/session/state`` (std_msgs/String, JSON): speaker, invitation, hand;
- ``/session/info`` (std_msgs/String, JSON, once): style, fps, seed, seats.
"""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from social_pose_diffusion.core.session import Session
from social_pose_diffusion.core.skeleton import NUM_JOINTS
from social_pose_diffusion.msgs.images import bgr_to_compressed, bgr_to_image, message_to_bgr
from social_pose_diffusion.msgs.keypoint_cloud import (
    MessageKit,
    cloud_to_frame,
    frame_to_cloud,
    stamp_ns,
)
from social_pose_diffusion.msgs.topics import (
    CAMERA_TOPIC,
    COMPRESSED_SUFFIX,
    FACILITATOR_TOPIC,
    GROUP_TOPIC,
    INFO_TOPIC,
    STATE_TOPIC,
)

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
_T = TYPESTORE.types
IMAGE, COMPRESSED, CLOUD, STRING = (
    'sensor_msgs/msg/Image',
    'sensor_msgs/msg/CompressedImage',
    'sensor_msgs/msg/PointCloud2',
    'std_msgs/msg/String',
)
# The rosbags message kit: what :mod:`social_pose_diffusion.msgs` builds for bags.
ROSBAGS = MessageKit(
    Header=_T['std_msgs/msg/Header'],
    Time=_T['builtin_interfaces/msg/Time'],
    PointCloud2=_T[CLOUD],
    PointField=_T['sensor_msgs/msg/PointField'],
    Image=_T[IMAGE],
    CompressedImage=_T[COMPRESSED],
    buffer=lambda data: np.frombuffer(data, np.uint8),
)


class BagError(ValueError):
    """A bag that cannot be read: missing, truncated, corrupt or holding malformed messages."""


@contextmanager
def _reading(path):
    """Any failure while reading the bag at ``path`` as one :class:`BagError` naming it."""
    try:
        yield
    except BagError:
        raise
    except Exception as exc:  # rosbags, mcap, zstd, CDR and message errors alike: the bag is bad
        raise BagError(f'{path}: not a readable session bag: {exc}') from exc


class SessionWriter:
    """Writes a session bag; use as a context manager.

    ``image_format`` is ``'compressed'`` (jpeg on the compressed topic, as
    image_transport records it), ``'raw'`` (bgr8 Image) or ``'both'``.
    mcap chunks are zstd-compressed. The bag is written into a hidden
    temporary directory next to ``path`` and renamed to ``path`` only when
    the block ends without an exception: a failed or interrupted write
    never leaves a bag that looks complete at ``path``.
    """

    def __init__(self, path, image_format='compressed', jpeg_quality=85, storage='mcap'):
        if image_format not in ('compressed', 'raw', 'both'):
            raise ValueError(f'image_format must be compressed, raw or both, not {image_format!r}')
        self.path = Path(path)
        if self.path.exists() or self.path.is_symlink():
            raise ValueError(f'{self.path} already exists; a bag is written to a new directory')
        self._plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._format, self._quality, self._conns = image_format, jpeg_quality, {}
        self._writer = self._staging = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f'.{self.path.name}.'))
        try:
            self._writer = Writer(
                self._staging / self.path.name, version=9, storage_plugin=self._plugin
            )
            if self._plugin == StoragePlugin.MCAP:
                self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
            self._writer.open()
        except BaseException:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise
        return self

    def __exit__(self, kind, exc, tb):
        try:
            self._writer.close()
            if kind is None:
                os.rename(self._staging / self.path.name, self.path)
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)

    def write(self, topic, msgtype, stamp, msg):
        """Serialise and write any rosbags message."""
        self.write_cdr(topic, msgtype, stamp, TYPESTORE.serialize_cdr(msg, msgtype))

    def write_cdr(self, topic, msgtype, stamp, data):
        """Write one already serialised (CDR) message."""
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
        self._writer.write(self._conns[topic], int(stamp), data)

    def image(self, stamp, bgr, topic=CAMERA_TOPIC):
        """A camera frame in the configured format(s)."""
        if self._format in ('raw', 'both'):
            self.write(topic, IMAGE, stamp, bgr_to_image(bgr, ROSBAGS.header(stamp), ROSBAGS))
        if self._format in ('compressed', 'both'):
            msg = bgr_to_compressed(bgr, ROSBAGS.header(stamp), ROSBAGS, self._quality)
            self.write(topic + COMPRESSED_SUFFIX, COMPRESSED, stamp, msg)

    def keypoints(self, topic, frame):
        """A :class:`GroupFrame` as PointCloud2."""
        self.write(
            topic,
            CLOUD,
            frame.stamp_ns,
            frame_to_cloud(frame, ROSBAGS.header(frame.stamp_ns), ROSBAGS),
        )

    def text(self, topic, stamp, payload):
        """A JSON payload as std_msgs/String."""
        self.write(topic, STRING, stamp, _T[STRING](data=json.dumps(payload)))


def read_messages(path, topics=None):
    """Yield ``(topic, log_time_ns, message)`` in log-time order; ``topics`` filters.

    A bag that cannot be read raises :class:`BagError` naming it.
    """
    with _reading(path), AnyReader([Path(path)], default_typestore=TYPESTORE) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, t, raw in reader.messages(connections=conns):
            yield conn.topic, t, reader.deserialize(raw, conn.msgtype)


def topic_counts(path: str | Path) -> dict[str, tuple[str, int]]:
    """``{topic: (msgtype, message count)}`` of a bag; :class:`BagError` if it is unreadable."""
    with _reading(path), AnyReader([Path(path)], default_typestore=TYPESTORE) as reader:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}


def camera_topic(path: str | Path) -> str | None:
    """The camera topic a bag holds, preferring raw Image over CompressedImage; None if none."""
    topics = topic_counts(path)
    for topic, (msgtype, _) in topics.items():
        if msgtype == IMAGE:
            return topic
    return next((t for t, (m, _) in topics.items() if m == COMPRESSED), None)


def iter_images(path, topic=None):
    """Yield ``(stamp_ns, bgr)`` for every camera frame, raw or compressed."""
    topic = topic or camera_topic(path)
    if topic is None:
        raise ValueError(f'{path} holds no sensor_msgs/Image or CompressedImage topic')
    with _reading(path):
        for _, _, msg in read_messages(path, [topic]):
            yield stamp_ns(msg), message_to_bgr(msg)


def read_session(
    path: str | Path, group_topic: str = GROUP_TOPIC, facilitator_topic: str = FACILITATOR_TOPIC
) -> Session:
    """A :class:`Session` with one frame per facilitator ground-truth message."""
    frames, facilitator, states, info = {}, {}, {}, {}
    with _reading(path):  # malformed clouds and states name the bag too
        wanted = [group_topic, facilitator_topic, STATE_TOPIC, INFO_TOPIC]
        for topic, _, msg in read_messages(path, wanted):
            if topic == group_topic:
                frames[stamp_ns(msg)] = cloud_to_frame(msg)
            elif topic == facilitator_topic:
                person = cloud_to_frame(msg)
                if len(person):
                    facilitator[stamp_ns(msg)] = person.keypoints[0]
            elif topic == INFO_TOPIC:
                info = json.loads(msg.data)
            else:
                state = json.loads(msg.data)
                states[int(state['stamp_ns'])] = state
    if not facilitator:
        raise ValueError(f'{path} has no facilitator messages on {facilitator_topic}')
    if not frames:  # a mistyped topic would train on nobody in view without a word
        held = ', '.join(t for t, (m, _) in topic_counts(path).items() if m == CLOUD) or 'none'
        raise ValueError(
            f'{path} has no group messages on {group_topic} (keypoint topics: {held})'
        )
    stamps = np.array(sorted(facilitator), np.int64)
    ids = np.unique(np.concatenate([f.ids for f in frames.values()] or [np.zeros(0, np.int32)]))
    group = np.zeros((len(stamps), len(ids), NUM_JOINTS, 3), np.float32)
    group_stamps = np.array(sorted(frames), np.int64)
    for t, stamp in enumerate(stamps):
        # The newest group frame at or before this stamp (the observation a node would hold).
        k = np.searchsorted(group_stamps, stamp, side='right') - 1
        if k >= 0:
            frame = frames[group_stamps[k]]
            group[t, np.searchsorted(ids, frame.ids)] = frame.keypoints
    empty = {'speaker': -1, 'invite': -1, 'hand': None}
    st = [states.get(int(s), empty) for s in stamps]
    hand = np.array([{'left': 0, 'right': 1}.get(s['hand'], -1) for s in st], np.int64)
    attend = np.array([s.get('attend', -1) for s in st], np.int64)
    return Session(
        stamps,
        ids.astype(np.int32),
        group,
        np.stack([facilitator[s] for s in stamps]),
        np.array([s['speaker'] for s in st], np.int64),
        np.array([s['invite'] for s in st], np.int64),
        hand,
        info,
        attend if any('attend' in s for s in st) else None,
    )
