"""What every node shares: QoS profiles, rolling statistics, /diagnostics, the process's main()."""

import signal
import sys
import threading
import time
from collections import deque

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import CallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from social_pose_diffusion.msgs.topics import COMPRESSED_SUFFIX
from social_pose_diffusion.ros.params import ParameterError

PACKAGE = 'social_pose_diffusion'


def relative(topic):
    """A graph topic as the nodes name it: relative, so ``namespace:=`` and remaps apply."""
    return topic.lstrip('/')


# Group keypoints and facilitator poses: small, every message matters for the
# consumer's state, but a late one is useless: reliable with a short history.
STATE_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def sensor_qos(reliability='best_effort', depth=qos_profile_sensor_data.depth):
    """qos_profile_sensor_data (keep last 5, volatile) with the reliability a parameter chose.

    ``depth``: samples kept (1 for a reader that only ever wants the newest).
    """
    if reliability not in ('best_effort', 'reliable'):
        raise ValueError(f"reliability must be 'best_effort' or 'reliable', not {reliability!r}")
    return QoSProfile(
        history=qos_profile_sensor_data.history,
        depth=depth,
        durability=qos_profile_sensor_data.durability,
        reliability=ReliabilityPolicy.BEST_EFFORT
        if reliability == 'best_effort'
        else ReliabilityPolicy.RELIABLE,
    )


def camera_subscription(node, topic, transport, callback, qos, callback_group=None):
    """A subscription to camera ``topic``: Image when ``transport`` is 'raw', else compressed.

    ``<topic>/compressed`` (CompressedImage), as image_transport names it.
    """
    if transport == 'compressed':
        topic, msg_type = topic + COMPRESSED_SUFFIX, CompressedImage
    else:
        msg_type = Image
    return node.create_subscription(msg_type, topic, callback, qos, callback_group=callback_group)


class IdleGate(CallbackGroup):
    """A callback group whose subscriptions are taken from only while the gate is open.

    :meth:`close` when a message goes to a worker, :meth:`open` when the worker
    is done. Meanwhile the executor leaves the subscriptions out of its wait
    set: the middleware keeps the newest samples (the history depth; keep last
    1 for the newest only) and no message is copied into Python just to be
    dropped. A 1920x960 raw frame takes three copies of its 5.5 MB holding the
    GIL on its way to Python; taking all 30 a second kept the executor about
    half busy and the perception worker waiting for the GIL.
    :meth:`open` wakes the executor (a guard condition of ``node``).
    """

    def __init__(self, node):
        super().__init__()
        self._open = True
        self._wake = node.create_guard_condition(lambda: None)

    def can_execute(self, entity):
        return self._open

    def beginning_execution(self, entity):
        return self._open

    def ending_execution(self, entity):
        pass

    def close(self):
        self._open = False

    def open(self):
        self._open = True
        self._wake.trigger()


class SequenceGaps:
    """Messages a subscription never took: gaps in each publisher's sequence numbers.

    Call with each taken message's info (a callback's second argument); returns
    how many that publisher sent since its previous one that were not taken
    (replaced in a keep-last history, or lost). A publisher that starts over
    (a smaller number) counts nothing.
    """

    def __init__(self):
        self._last = {}

    def __call__(self, info):
        seq = info.get('publication_sequence_number')
        if seq is None:
            return 0
        gid = bytes((info.get('publisher_gid') or {}).get('data', b''))
        last, self._last[gid] = self._last.get(gid), seq
        return seq - last - 1 if last is not None and seq > last else 0


class Stats:
    """Thread-safe rolling rate, durations and counters for /diagnostics."""

    def __init__(self, window=100):
        self._lock = threading.Lock()
        self._events = {}
        self._durations = {}
        self.counters = {}
        self._window = window

    def event(self, name, n=1):
        """Note that ``name`` happened now, ``n`` times (for its rate)."""
        with self._lock:
            self._events.setdefault(name, deque(maxlen=self._window)).append((time.monotonic(), n))

    def duration(self, name, seconds):
        with self._lock:
            self._durations.setdefault(name, deque(maxlen=self._window)).append(seconds)

    def set(self, name, value):
        """A gauge reported with the counters."""
        with self._lock:
            self.counters[name] = value

    def count(self, name, n=1):
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def rate(self, name):
        """Events per second over the window (0 with fewer than two, or when stale).

        The events of the window's first note opened it, so they do not count.
        """
        with self._lock:
            notes = list(self._events.get(name, ()))
        if len(notes) < 2 or time.monotonic() - notes[-1][0] > 5.0:
            return 0.0
        return sum(n for _, n in notes[1:]) / max(notes[-1][0] - notes[0][0], 1e-9)

    def summary(self, name):
        """``(mean, p95, max, median)`` of a duration in milliseconds, or None."""
        with self._lock:
            values = list(self._durations.get(name, ()))
        if not values:
            return None
        ms = np.asarray(values) * 1e3
        return (
            float(ms.mean()),
            float(np.percentile(ms, 95)),
            float(ms.max()),
            float(np.median(ms)),
        )

    def key_values(self, rates=(), durations=()):
        """Diagnostic key/values: rates in Hz, durations in ms, then every counter."""
        values = [(f'{label} (Hz)', f'{self.rate(name):.1f}') for name, label in rates]
        for name, label in durations:
            s = self.summary(name)
            if s is not None:
                values += [
                    (f'{label} mean (ms)', f'{s[0]:.1f}'),
                    (f'{label} p95 (ms)', f'{s[1]:.1f}'),
                    (f'{label} max (ms)', f'{s[2]:.1f}'),
                    (f'{label} median (ms)', f'{s[3]:.1f}'),
                ]
        with self._lock:
            values += [(k, str(v)) for k, v in sorted(self.counters.items())]
        return values


def diagnostic_array(node, level, message, values):
    """A DiagnosticArray holding one status named after the node."""
    status = DiagnosticStatus(
        level=level,
        name=node.get_fully_qualified_name(),
        message=message,
        hardware_id=PACKAGE,
        values=[KeyValue(key=k, value=v) for k, v in values],
    )
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Diagnostics:
    """A node's /diagnostics: ``status()`` gives ``(level, message, key/values)`` every period.

    The timer runs on the steady clock (diagnostics keep their period under sim
    time); its period follows the node's ``diagnostics_period`` parameter:
    pass the changed parameter names to :meth:`apply`.
    """

    def __init__(self, node, status):
        self._node, self._status, self.timer = node, status, None
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.apply({'diagnostics_period'})

    def apply(self, changed):
        if 'diagnostics_period' in changed:
            if self.timer is not None:
                self._node.destroy_timer(self.timer)
            self.timer = self._node.create_timer(
                self._node.params['diagnostics_period'],
                self._publish,
                clock=Clock(clock_type=ClockType.STEADY_TIME),
            )

    def _publish(self):
        level, message, values = self._status()
        self._pub.publish(diagnostic_array(self._node, level, message, values))


class LatestSlot:
    """A one-item mailbox: ``put`` replaces what was not taken (a drop), ``take`` gets the newest.

    Sensor callbacks stay cheap and a slow consumer always works on the newest
    input; nothing ever queues behind it.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item):
        """Store ``item``; True when it replaced one that was never taken."""
        with self._cond:
            dropped = self._item is not None
            self._item = item
            self._cond.notify()
        return dropped

    def take(self, timeout=None):
        """The newest item (and empty the slot), or None on timeout or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def serve(self, handle, running, on_error):
        """A worker thread's loop: ``handle`` the newest item while ``running()``.

        An exception from ``handle`` goes to ``on_error`` and the loop goes on:
        the worker must outlive any single input.
        """
        while running():
            item = self.take(timeout=0.2)
            if item is None:
                continue
            try:
                handle(item)
            except Exception as exc:
                on_error(exc)


class Worker:
    """A thread handling the newest item :meth:`put` to it (a :class:`LatestSlot`), until stopped.

    An exception from ``handle`` goes to ``on_error`` and the thread goes on.
    """

    def __init__(self, name, handle, on_error):
        self._name, self._handle, self._on_error = name, handle, on_error
        self._slot, self._thread, self.running = LatestSlot(), None, False

    def start(self):
        self._slot, self.running = LatestSlot(), True
        self._thread = threading.Thread(
            target=self._slot.serve,
            name=self._name,
            daemon=True,
            args=(self._handle, lambda: self.running, self._on_error),
        )
        self._thread.start()

    def put(self, item):
        """Hand ``item`` over; True when it replaced one the thread never took (a drop)."""
        return self._slot.put(item)

    def stop(self, timeout=10.0):
        self.running = False
        self._slot.close()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def failed(self):
        """True when it should run but its thread has ended."""
        return self.running and (self._thread is None or not self._thread.is_alive())


class Reporter:
    """Logs a problem when its message changes, else at most every ``period`` s (no log floods).

    A problem of kind None is always logged: its caller limits it.
    """

    def __init__(self, logger, period=5.0):
        self._logger, self._period, self._last = logger, period, {}

    def __call__(self, kind, text, level='warning'):
        now = time.monotonic()
        if kind is not None:
            last = self._last.get(kind)
            if last is not None and last[0] == text and now - last[1] < self._period:
                return
            self._last[kind] = (text, now)
        # rclpy ties a severity to each logging call site: one site per level.
        if level == 'error':
            self._logger.error(text)
        elif level == 'warning':
            self._logger.warning(text)
        else:
            self._logger.info(text)


def run_node(make_node, args=None):
    """``main()`` of every node: init rclpy, spin until SIGINT/SIGTERM or a shutdown, release.

    A signal is a normal shutdown: rclpy's handler ends the spin, ours only
    notes it, so a second Ctrl-C reaching the process group during the
    release cannot raise KeyboardInterrupt; the process exits 0. An invalid
    parameter at start-up is one logged line and exit status 2. A node may
    define ``start()`` (called before spinning) and ``shutdown()`` (called
    before it is destroyed) to manage its threads.
    """
    signalled = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # before rclpy.init, which chains to them
        signal.signal(sig, lambda signum, frame: signalled.append(signum))
    rclpy.init(args=args)
    node, code = None, 0
    try:
        node = make_node()
        getattr(node, 'start', lambda: None)()
        rclpy.spin(node)
    except ParameterError as exc:
        rclpy.logging.get_logger(exc.node).error(str(exc))
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if not signalled:  # a failure while the context was shut down under it is a shutdown
            raise
    finally:
        if node is not None:
            getattr(node, 'shutdown', lambda: None)()
            node.destroy_node()
        rclpy.try_shutdown()  # restores the handlers rclpy.init found
    # Python restores default handlers while it finalizes (a late Ctrl-C would kill the process
    # with -2) but leaves ignored signals ignored: the node has shut down, nothing is left to stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)
