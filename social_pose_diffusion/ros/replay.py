"""Live replay evaluation through real DDS.

Play a session bag into the running node graph and score what it publishes.

The graph (:class:`~social_pose_diffusion.ros.launcher.Graph`: the launch
files' executables and parameter files) runs with ``use_sim_time``; this
process publishes ``/clock`` and the bag's camera stream at 1x (``rate``
scales it), records every output with its wall-clock arrival, writes them into
an output bag and scores them with :mod:`social_pose_diffusion.evaluation.live`.
``live=True`` instead stamps frames with the wall clock like a camera driver
(no /clock): what ``social-pose benchmark pipeline`` measures.
"""

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.srv import GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image, JointState, PointCloud2

from social_pose_diffusion.core.frames import single_person
from social_pose_diffusion.evaluation.live import OUTPUT_TYPES, score, write_outputs
from social_pose_diffusion.msgs.images import bgr_to_compressed, bgr_to_image, message_to_bgr
from social_pose_diffusion.msgs.keypoint_cloud import cloud_to_frame, frame_to_cloud, stamp_ns
from social_pose_diffusion.msgs.topics import (
    CAMERA_TOPIC,
    COMPRESSED_SUFFIX,
    EXTERNAL_KEYPOINTS_TOPIC,
    GROUP_TOPIC,
    OBSERVED_TOPIC,
)
from social_pose_diffusion.ros.common import STATE_QOS, sensor_qos
from social_pose_diffusion.ros.launcher import Graph, large_message_env, launch_params
from social_pose_diffusion.ros.messages import RCLPY
from social_pose_diffusion.ros.spec import overrides as overrides_of
from social_pose_diffusion.sources.bags import (
    IMAGE,
    camera_topic,
    read_messages,
    read_session,
    topic_counts,
)

_CLASSES = {
    'sensor_msgs/msg/PointCloud2': PointCloud2,
    'sensor_msgs/msg/JointState': JointState,
    'diagnostic_msgs/msg/DiagnosticArray': DiagnosticArray,
}


class ReplayNode(Node):
    """Publishes /clock and the input stream, records the graph's outputs.

    The outputs are recorded as raw CDR + arrival times.
    """

    def __init__(self, input_kind, sim_time=True):
        super().__init__('social_pose_replay')
        self.input_kind, self.sim_time = input_kind, sim_time
        self.sim_ns = 0
        self.received = []  # (arrival monotonic s, sim ns, topic, cdr bytes)
        self._lock = threading.Lock()
        self.clock_pub = self.create_publisher(Clock, '/clock', 10) if sim_time else None
        if input_kind == 'keypoints':
            self.input_pub = self.create_publisher(
                PointCloud2, EXTERNAL_KEYPOINTS_TOPIC, STATE_QOS
            )
            self.observed_pub = self.create_publisher(PointCloud2, OBSERVED_TOPIC, STATE_QOS)
        else:
            msg_type = CompressedImage if input_kind == 'compressed' else Image
            topic = CAMERA_TOPIC + (COMPRESSED_SUFFIX if input_kind == 'compressed' else '')
            self.input_pub = self.create_publisher(msg_type, topic, sensor_qos('reliable'))
        for topic, type_name in OUTPUT_TYPES.items():
            msg_type = _CLASSES[type_name]
            self.create_subscription(
                msg_type,
                topic,
                lambda raw, t=topic: self._record(t, raw),
                STATE_QOS if msg_type is PointCloud2 else 10,
                raw=True,
            )
        self.get_state = self.create_client(GetState, '/policy_node/get_state')

    def _record(self, topic, raw):
        with self._lock:
            self.received.append((time.monotonic(), self.now_ns(), topic, bytes(raw)))

    def now_ns(self):
        return self.sim_ns if self.sim_time else time.time_ns()

    def tick_clock(self, ns):
        if self.sim_time:
            self.sim_ns = int(ns)
            self.clock_pub.publish(Clock(clock=RCLPY.stamp(ns)))

    def policy_state(self, timeout=2.0):
        """The policy node's lifecycle state label, or None when it does not answer."""
        if not self.get_state.service_is_ready():
            return None
        future = self.get_state.call_async(GetState.Request())
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.02)
        return future.result().current_state.label if future.done() and future.result() else None


def _input_messages(bag, input_kind, session, max_frames=None):
    """``[(stamp_ns, make_msg(stamp_ns))]`` for the stream this replay publishes."""
    items = []
    if input_kind == 'keypoints':
        for _, _, msg in read_messages(bag, [GROUP_TOPIC]):
            items.append((stamp_ns(msg), cloud_to_frame(msg)))
    else:
        topic = camera_topic(bag)
        for _, _, msg in read_messages(bag, [topic]):
            items.append((stamp_ns(msg), msg))
    return items[:max_frames] if max_frames else items


def _build(node, input_kind, payload, stamp):
    """The rclpy message for one input item, stamped ``stamp``."""
    header = RCLPY.header(stamp)
    if isinstance(payload, (Image, CompressedImage, PointCloud2)):  # prepared in advance
        payload.header = header
        return payload
    if input_kind == 'keypoints':
        payload.stamp_ns = stamp
        return frame_to_cloud(payload, header, RCLPY)
    if input_kind == 'compressed':
        if hasattr(payload, 'format'):
            return CompressedImage(
                header=header, format=payload.format, data=RCLPY.buffer(payload.data.tobytes())
            )
        return bgr_to_compressed(message_to_bgr(payload), header, RCLPY)
    return bgr_to_image(message_to_bgr(payload), header, RCLPY)


def wait_ready(node, graph, timeout=180.0, progress=print):
    """Block until the graph is ready.

    Ready: the graph subscribes to the input, the policy node is active and
    its pose topic is up.
    """
    start = time.monotonic()
    while True:
        graph.check()
        state = node.policy_state()
        subscribed = node.input_pub.get_subscription_count() > 0
        poses = node.count_publishers('/facilitator/pose') > 0
        if subscribed and poses and state == 'active':
            return time.monotonic() - start
        if state in ('unconfigured', 'inactive') and 'policy_node' in graph.procs:
            # autostart runs before the node answers: it stopped short of active (see its log)
            raise RuntimeError(
                f'policy_node is {state} after start-up:\n{graph.log_tail("policy_node")}'
            )
        if time.monotonic() - start > timeout:
            raise RuntimeError(
                f'graph not ready after {timeout:.0f} s (input subscribed: {subscribed}, '
                f'policy state: {state}, pose publisher: {poses})'
            )
        time.sleep(0.2)


def play(
    node, items, input_kind, rate=1.0, clock_period=0.01, drain_s=1.5, observed=None, progress=None
):
    """Publish ``items`` in real time (times ``rate``).

    Returns ``{sent stamp: publish monotonic s}``.
    """
    sent = {}
    first = items[0][0]
    base_sim = first - int(0.1e9)
    base_wall = time.monotonic()
    node.tick_clock(base_sim)

    def sim_at(wall):
        return base_sim + int((wall - base_wall) * rate * 1e9)

    next_clock = base_wall
    for n, (stamp, payload) in enumerate(items):
        target = base_wall + (stamp - base_sim) * 1e-9 / rate
        while True:
            now = time.monotonic()
            if now >= target:
                break
            if now >= next_clock:
                node.tick_clock(min(sim_at(now), stamp - 1))
                next_clock = now + clock_period
            time.sleep(max(0.0, min(target, next_clock) - time.monotonic()))
        node.tick_clock(stamp)
        out_stamp = stamp if node.sim_time else time.time_ns()
        msg = _build(node, input_kind, payload, out_stamp)
        if observed is not None and n in observed:
            node.observed_pub.publish(
                frame_to_cloud(
                    single_person(out_stamp, observed[n]), RCLPY.header(out_stamp), RCLPY
                )
            )
        sent[out_stamp] = time.monotonic()
        node.input_pub.publish(msg)
        if progress:
            progress(n)
    end = time.monotonic() + drain_s
    last = items[-1][0]
    while time.monotonic() < end:
        node.tick_clock(last + int((time.monotonic() - target) * rate * 1e9))
        time.sleep(clock_period)
    return sent


def check_model(model) -> None:
    """Refuse (:class:`ModelError`) a model the policy node would fail to configure with.

    Before any node starts or file is written: a graph with an unconfigured
    policy would only time out.
    """
    if model:
        from social_pose_diffusion.policy import load_policy

        load_policy(model, 'cpu')


def replay(
    bag,
    out=None,
    input_kind='image',
    model=None,
    rate=1.0,
    max_frames=None,
    env=None,
    log_dir=None,
    overrides=None,
    progress=True,
    live=False,
    ready_timeout=180.0,
):
    """Run the graph on ``bag`` and return the report dict; ``out`` receives the output bag.

    ``input_kind``: ``'image'`` (the camera stream as recorded: raw or compressed),
    ``'raw'`` / ``'compressed'`` (force that transport), or ``'keypoints'`` (the
    bag's ground-truth group keypoints through the external-detector input:
    the policy without perception).
    """
    from tqdm import tqdm

    check_model(model)
    bag = Path(bag)
    session = read_session(bag)
    if input_kind == 'image':
        topic = camera_topic(bag)
        if topic is None:
            raise ValueError(f'{bag} holds no camera stream')
        input_kind = 'raw' if topic_counts(bag)[topic][0] == IMAGE else 'compressed'
    if input_kind not in ('raw', 'compressed', 'keypoints'):
        raise ValueError(f'input must be image, raw, compressed or keypoints, not {input_kind!r}')
    params = launch_params('facilitator' if live else 'replay')
    given = {'model_path': str(Path(model).resolve()) if model else ''}
    seat = session.info.get('facilitator_seat_u')
    if input_kind != 'keypoints':  # the camera sees the facilitator at its seat
        given['image_transport'] = input_kind
        given['facilitator_seat_u'] = '' if seat is None else repr(float(seat))
    node_overrides = overrides_of('replay', given)  # what replay.launch.py passes for the same bag
    if input_kind == 'keypoints':
        node_overrides['keypoints_node']['input'] = 'keypoints'
    for name, values in (overrides or {}).items():
        node_overrides.setdefault(name, {}).update(values)
    items = _input_messages(bag, input_kind, session, max_frames)
    if not items:
        raise ValueError(f'{bag} holds no input messages to play')
    observed = None
    if input_kind == 'keypoints':  # an external detector would see the facilitator too
        observed = {
            n: session.facilitator[min(np.searchsorted(session.stamps_ns, s), len(session) - 1)]
            for n, (s, _) in enumerate(items[:3])
        }
    with running_graph(
        input_kind,
        node_overrides,
        params,
        live=live,
        env=env,
        log_dir=log_dir,
        first_stamp=items[0][0] - int(0.2e9),
        ready_timeout=ready_timeout,
    ) as (node, graph, ready_s):
        bar = tqdm(total=len(items), desc='replay', unit='frame', disable=not progress)
        sent = play(
            node, items, input_kind, rate, observed=observed, progress=lambda n: bar.update(1)
        )
        bar.close()
        graph.check()
        with node._lock:
            received = list(node.received)
        report = {
            'bag': str(bag),
            'input': input_kind,
            'mode': (
                'live camera: frames stamped with the wall clock'
                if live
                else f'{rate:g}x real time, simulated time from /clock (use_sim_time)'
            ),
            'graph_ready_s': round(ready_s, 2),
            'nodes_alive': graph.alive(),
            **score(received, sent, None if live else session),
        }
        if out:
            report['output_bag'] = str(write_outputs(out, received, None if live else bag))
    return report


@contextmanager
def running_graph(
    input_kind,
    overrides,
    params_files,
    live=False,
    env=None,
    log_dir=None,
    first_stamp=0,
    ready_timeout=180.0,
):
    """The graph started and ready, with a :class:`ReplayNode` spinning here.

    Yields ``(node, graph, ready_s)``.
    """
    large_message_env()
    rclpy.init()
    node = ReplayNode(input_kind, sim_time=not live)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    graph = Graph(params_files, overrides, env=env, log_dir=log_dir)
    try:
        graph.start()
        node.tick_clock(first_stamp)
        yield node, graph, wait_ready(node, graph, ready_timeout)
    finally:
        graph.stop()
        executor.shutdown(timeout_sec=1.0)
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown()


def evaluate_command(args):
    """``social-pose evaluate --replay BAG``: run :func:`replay`.

    Writes ``args.report`` (JSON) and prints it.
    """
    import json

    from social_pose_diffusion.core.atomic import write_json

    bag = Path(args.replay)
    if not bag.is_dir():
        raise FileNotFoundError(f'session bag {bag} not found')
    report_path = Path(args.report)
    out = report_path.with_name(report_path.stem + '_outputs')
    report = replay(
        bag,
        out=out,
        input_kind=args.replay_input,
        model=args.model,
        log_dir=report_path.with_name(report_path.stem + '_logs'),
    )
    write_json(report_path, report)
    print(json.dumps(report, indent=2))
    print(f'wrote {report_path} and {out}')
    return 0
