"""Live replay evaluation: play a session bag into the running node graph through real DDS and score what it publishes.

The graph (:class:`~social_pose_diffusion.graph.Graph`, the launch files'
executables and parameter files) runs with ``use_sim_time``; this process
publishes ``/clock`` and the bag's camera stream at 1x (``rate`` scales it),
records every output with its wall-clock arrival, writes them into an output
bag and scores them with the offline evaluation's metric code
(:mod:`social_pose_diffusion.skeleton` / :mod:`social_pose_diffusion.metrics`):

- MPJPE of the published facilitator pose against the bag's ground truth at
  the same (simulated) time, next to holding the first true pose;
- end-to-end latency: image published -> first facilitator pose planned from
  it received (its ``obs_age`` field names the observation), mean and p95;
- output rate, and frames dropped on the way (images without keypoints).

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
from std_msgs.msg import Header

from .bags import (CAMERA_TOPIC, FACILITATOR_TOPIC, GROUP_TOPIC, IMAGE, TYPESTORE, camera_topic, cloud_to_frame,
                   facilitator_frame, message_to_bgr, read_messages, read_session, stamp_of, topic_counts)
from .graph import Graph, config_path, large_message_env
from .metrics import timing
from .nodes.common import STATE_QOS, sensor_qos
from .nodes.ros_conversions import array_to_image, cloud_field, frame_to_cloud, ns_to_stamp
from .skeleton import joint_distance

OUTPUTS = {'/humans/keypoints': PointCloud2, '/facilitator/observed': PointCloud2, '/facilitator/pose': PointCloud2,
           '/facilitator/joint_states': JointState, '/diagnostics': DiagnosticArray}
MSGTYPE = {PointCloud2: 'sensor_msgs/msg/PointCloud2', JointState: 'sensor_msgs/msg/JointState',
           DiagnosticArray: 'diagnostic_msgs/msg/DiagnosticArray'}


class ReplayNode(Node):
    """Publishes /clock and the input stream, records the graph's outputs (raw CDR + arrival times)."""

    def __init__(self, input_kind, sim_time=True):
        super().__init__('social_pose_replay')
        self.input_kind, self.sim_time = input_kind, sim_time
        self.sim_ns = 0
        self.received = []  # (arrival monotonic s, sim ns, topic, cdr bytes)
        self._lock = threading.Lock()
        self.clock_pub = self.create_publisher(Clock, '/clock', 10) if sim_time else None
        if input_kind == 'keypoints':
            self.input_pub = self.create_publisher(PointCloud2, '/humans/keypoints_external', STATE_QOS)
            self.observed_pub = self.create_publisher(PointCloud2, '/facilitator/observed', STATE_QOS)
        else:
            msg_type = CompressedImage if input_kind == 'compressed' else Image
            topic = CAMERA_TOPIC + ('/compressed' if input_kind == 'compressed' else '')
            self.input_pub = self.create_publisher(msg_type, topic, sensor_qos('reliable'))
        for topic, msg_type in OUTPUTS.items():
            self.create_subscription(msg_type, topic, lambda raw, t=topic: self._record(t, raw),
                                     STATE_QOS if msg_type is PointCloud2 else 10, raw=True)
        self.get_state = self.create_client(GetState, '/policy_node/get_state')

    def _record(self, topic, raw):
        with self._lock:
            self.received.append((time.monotonic(), self.now_ns(), topic, bytes(raw)))

    def now_ns(self):
        return self.sim_ns if self.sim_time else time.time_ns()

    def tick_clock(self, ns):
        if self.sim_time:
            self.sim_ns = int(ns)
            self.clock_pub.publish(Clock(clock=ns_to_stamp(ns)))

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
            items.append((stamp_of(msg), cloud_to_frame(msg)))
    else:
        topic = camera_topic(bag)
        for _, _, msg in read_messages(bag, [topic]):
            items.append((stamp_of(msg), msg))
    return items[:max_frames] if max_frames else items


def _build(node, input_kind, payload, stamp):
    """The rclpy message for one input item, stamped ``stamp``."""
    header = Header(stamp=ns_to_stamp(stamp), frame_id='camera')
    if isinstance(payload, (Image, CompressedImage, PointCloud2)):  # prepared in advance
        payload.header = header
        return payload
    if input_kind == 'keypoints':
        payload.stamp_ns = stamp
        return frame_to_cloud(payload, header)
    if input_kind == 'compressed':
        if hasattr(payload, 'format'):
            return CompressedImage(header=header, format=payload.format, data=payload.data.tobytes())
        from .image_codec import bgr_to_jpeg
        return CompressedImage(header=header, format='bgr8; jpeg compressed bgr8',
                               data=bgr_to_jpeg(message_to_bgr(payload)))
    if not hasattr(payload, 'format') and payload.encoding == 'bgr8':
        msg = array_to_image(np.asarray(payload.data).reshape(payload.height, payload.step)[:, :payload.width * 3]
                             .reshape(payload.height, payload.width, 3), stamp)
    else:
        msg = array_to_image(message_to_bgr(payload), stamp)
    msg.header = header
    return msg


def wait_ready(node, graph, timeout=180.0, progress=print):
    """Block until the graph subscribes to the input, the policy node is active and its pose topic is up."""
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
            raise RuntimeError(f'policy_node is {state} after start-up:\n{graph.log_tail("policy_node")}')
        if time.monotonic() - start > timeout:
            raise RuntimeError(f'graph not ready after {timeout:.0f} s (input subscribed: {subscribed}, '
                               f'policy state: {state}, pose publisher: {poses})')
        time.sleep(0.2)


def play(node, items, input_kind, rate=1.0, clock_period=0.01, drain_s=1.5, observed=None, progress=None):
    """Publish ``items`` in real time (times ``rate``); returns ``{sent stamp: publish monotonic s}``."""
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
            node.observed_pub.publish(frame_to_cloud(facilitator_frame(out_stamp, observed[n]),
                                                     Header(stamp=ns_to_stamp(out_stamp), frame_id='camera')))
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


def score(received, sent, session=None, diagnostics=True):
    """The report's numbers from the recorded outputs (see the module docstring)."""
    sent_stamps = np.array(sorted(sent), np.int64)
    poses, stamps, sources, arrivals, clouds = [], [], [], [], set()
    last_diag = {}
    for arrival, _, topic, raw in received:
        if topic == '/facilitator/pose':
            msg = TYPESTORE.deserialize_cdr(raw, MSGTYPE[PointCloud2])
            frame = cloud_to_frame(msg)
            age = cloud_field(msg, 'obs_age')
            if not len(frame) or age is None:
                continue
            stamps.append(stamp_of(msg))
            poses.append(frame.keypoints[0, :, :2])
            sources.append(stamp_of(msg) - int(round(float(age[0]) * 1e9)))
            arrivals.append(arrival)
        elif topic == '/humans/keypoints':
            clouds.add(stamp_of(TYPESTORE.deserialize_cdr(raw, MSGTYPE[PointCloud2])))
        elif topic == '/diagnostics' and diagnostics:
            msg = TYPESTORE.deserialize_cdr(raw, MSGTYPE[DiagnosticArray])
            for status in msg.status:
                last_diag[status.name] = {'level': int(status.level), 'message': status.message,
                                          **{kv.key: kv.value for kv in status.values}}
    report = {'frames_published': len(sent), 'poses_received': len(poses),
              'keypoint_frames_received': len(clouds & set(sent)),
              'dropped_frames': len(set(sent) - clouds)}
    # Latency: the first pose planned from each image (its source stamp) after the image was published.
    latency = {}
    for src, arrival in zip(sources, arrivals):
        k = int(np.searchsorted(sent_stamps, src))
        for j in (k - 1, k):
            if 0 <= j < len(sent_stamps) and abs(int(sent_stamps[j]) - src) <= 2_000_000:
                s = int(sent_stamps[j])
                latency.setdefault(s, arrival - sent[s])
    lat = list(latency.values())
    report['frames_reaching_a_pose'] = len(latency)
    report['latency_ms'] = {**timing(lat), 'max_ms': float(1e3 * max(lat))} if lat else {}
    if len(arrivals) > 1:
        span = [a for a in arrivals if min(sent.values()) <= a <= max(sent.values())]
        report['output_rate_hz'] = float((len(span) - 1) / max(span[-1] - span[0], 1e-9)) if len(span) > 1 else 0.0
        st = np.array(stamps, np.int64)
        report['control_interval_ms'] = {'median': float(np.median(np.diff(st)) * 1e-6),
                                         'p95': float(np.percentile(np.diff(st), 95) * 1e-6)}
    if session is not None and poses:
        fac = np.asarray(session.facilitator, np.float64)[..., :2]
        gt = np.asarray(session.stamps_ns, np.int64)
        half = int(0.5e9 / session.fps)
        idx = np.clip(np.searchsorted(gt, stamps), 1, len(gt) - 1)
        idx = np.where(np.abs(gt[idx - 1] - stamps) < np.abs(gt[idx] - stamps), idx - 1, idx)
        ok = np.abs(gt[idx] - np.array(stamps)) <= half
        if ok.any():
            pred = np.stack(poses)[ok]
            truth = fac[idx[ok]]
            report['mpjpe'] = float(joint_distance(pred, truth).mean())
            report['mpjpe_hold_first_true_pose'] = float(joint_distance(fac[idx[ok][0]][None], truth).mean())
            report['poses_scored'] = int(ok.sum())
    if last_diag:
        report['diagnostics'] = last_diag
    return report


def write_outputs(path, received, session_bag=None):
    """The recorded outputs (log time = simulated receive time) and the bag's ground truth, as mcap."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    path = Path(path)
    if path.exists():
        import shutil
        shutil.rmtree(path)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for _, sim_ns, topic, raw in received:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, MSGTYPE[OUTPUTS[topic]], typestore=TYPESTORE)
            writer.write(conns[topic], int(sim_ns), raw)
        if session_bag is not None:
            conn = None
            for topic, t, msg in read_messages(session_bag, [FACILITATOR_TOPIC]):
                conn = conn or writer.add_connection('/facilitator/ground_truth', MSGTYPE[PointCloud2],
                                                     typestore=TYPESTORE)
                writer.write(conn, t, TYPESTORE.serialize_cdr(msg, MSGTYPE[PointCloud2]))
    return path


def replay(bag, out=None, input_kind='image', model=None, rate=1.0, max_frames=None, env=None, log_dir=None,
           overrides=None, progress=True, live=False, ready_timeout=180.0):
    """Run the graph on ``bag`` and return the report dict; ``out`` receives the output bag.

    ``input_kind``: ``'image'`` (the camera stream as recorded: raw or compressed),
    ``'raw'`` / ``'compressed'`` (force that transport), or ``'keypoints'`` (the
    bag's ground-truth group keypoints through the external-detector input:
    the policy without perception).
    """
    from tqdm import tqdm
    bag = Path(bag)
    session = read_session(bag)
    if input_kind == 'image':
        topic = camera_topic(bag)
        if topic is None:
            raise ValueError(f'{bag} holds no camera stream')
        input_kind = 'raw' if topic_counts(bag)[topic][0] == IMAGE else 'compressed'
    if input_kind not in ('raw', 'compressed', 'keypoints'):
        raise ValueError(f'input must be image, raw, compressed or keypoints, not {input_kind!r}')
    params = [config_path('facilitator.yaml')] + ([] if live else [config_path('replay.yaml')])
    node_overrides = {'keypoints_node': {}, 'policy_node': {}}
    if input_kind == 'keypoints':
        node_overrides['keypoints_node']['input'] = 'keypoints'
    else:
        node_overrides['keypoints_node']['image_transport'] = 'compressed' if input_kind == 'compressed' else 'raw'
        seat = session.info.get('facilitator_seat_u')
        if seat is not None:
            node_overrides['keypoints_node']['facilitator_seat_u'] = float(seat)
    if model:
        node_overrides['policy_node']['model_path'] = str(Path(model).resolve())
    for name, values in (overrides or {}).items():
        node_overrides.setdefault(name, {}).update(values)
    items = _input_messages(bag, input_kind, session, max_frames)
    if not items:
        raise ValueError(f'{bag} holds no input messages to play')
    observed = None
    if input_kind == 'keypoints':  # an external detector would see the facilitator too
        observed = {n: session.facilitator[min(np.searchsorted(session.stamps_ns, s), len(session) - 1)]
                    for n, (s, _) in enumerate(items[:3])}
    with running_graph(input_kind, node_overrides, params, live=live, env=env, log_dir=log_dir,
                       first_stamp=items[0][0] - int(0.2e9), ready_timeout=ready_timeout) as (node, graph, ready_s):
        bar = tqdm(total=len(items), desc='replay', unit='frame', disable=not progress)
        sent = play(node, items, input_kind, rate, observed=observed, progress=lambda n: bar.update(1))
        bar.close()
        graph.check()
        with node._lock:
            received = list(node.received)
        report = {'bag': str(bag), 'input': input_kind,
                  'mode': ('live camera: frames stamped with the wall clock' if live else
                           f'{rate:g}x real time, simulated time from /clock (use_sim_time)'),
                  'graph_ready_s': round(ready_s, 2), 'nodes_alive': graph.alive(),
                  **score(received, sent, None if live else session)}
        if out:
            report['output_bag'] = str(write_outputs(out, received, None if live else bag))
    return report


@contextmanager
def running_graph(input_kind, overrides, params_files, live=False, env=None, log_dir=None, first_stamp=0,
                  ready_timeout=180.0):
    """The graph started and ready, with a :class:`ReplayNode` spinning here: yields ``(node, graph, ready_s)``."""
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


def recorded_poses(out_bag):
    """``(stamps_ns, (N, J, 2) poses)`` of the generated facilitator in an output bag."""
    stamps, poses = [], []
    for _, _, msg in read_messages(out_bag, ['/facilitator/pose']):
        frame = cloud_to_frame(msg)
        if len(frame):
            stamps.append(stamp_of(msg))
            poses.append(frame.keypoints[0, :, :2])
    return np.array(stamps, np.int64), (np.stack(poses) if poses else np.zeros((0, 13, 2)))


def recorded_groups(out_bag):
    """``{stamp_ns: (N, J, 3) keypoints}`` the graph perceived, from an output bag."""
    return {stamp_of(msg): cloud_to_frame(msg).keypoints for _, _, msg in read_messages(out_bag, ['/humans/keypoints'])}


def nearest(stamps, stamp, tolerance_ns):
    """Index of the stamp nearest ``stamp`` within ``tolerance_ns``, or None."""
    if not len(stamps):
        return None
    k = int(np.clip(np.searchsorted(stamps, stamp), 1, len(stamps) - 1)) if len(stamps) > 1 else 0
    if k > 0 and abs(stamps[k - 1] - stamp) < abs(stamps[k] - stamp):
        k -= 1
    return k if abs(int(stamps[k]) - stamp) <= tolerance_ns else None


def evaluate_command(args):
    """``social-pose evaluate --replay BAG``: run :func:`replay`, write ``args.report`` (JSON), print it."""
    import json

    from .atomic import write_json
    from .policy import model_paths
    bag = Path(args.replay)
    if not bag.is_dir():
        raise FileNotFoundError(f'session bag {bag} not found')
    model = args.model
    if model == 'models/default' and not model_paths(model)[0].is_file():
        model = None  # not run from the source tree: the installed default model
    report_path = Path(args.report)
    out = report_path.with_name(report_path.stem + '_outputs')
    report = replay(bag, out=out, input_kind=args.replay_input, model=model,
                    log_dir=report_path.with_name(report_path.stem + '_logs'))
    write_json(report_path, report)
    print(json.dumps(report, indent=2))
    print(f'wrote {report_path} and {out}')
    return 0
