"""Wait until a lifecycle node is active: ``python -m social_pose_diffusion.ros.wait_active NODE``.

replay.launch.py starts ``ros2 bag play`` when this exits 0. It asks the node's
``get_state`` service until the answer is ``active`` instead of listening for its
``transition_event``: a node that activates itself (``autostart``) may do so before
a listener has matched, and the event is then lost. Exit 1 after ``--timeout``.
"""

import argparse
import sys
import time

import rclpy
from lifecycle_msgs.srv import GetState


def wait_active(node_name: str, timeout: float) -> bool:
    """True once ``node_name`` reports ``active``; False at the deadline."""
    node = rclpy.create_node('social_pose_wait_active')
    client = node.create_client(GetState, f'{node_name}/get_state')
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if client.wait_for_service(timeout_sec=1.0):
                future = client.call_async(GetState.Request())
                rclpy.spin_until_future_complete(node, future, timeout_sec=2.0)
                reply = future.result() if future.done() else None
                if reply is not None and reply.current_state.label == 'active':
                    return True
            time.sleep(0.2)
        return False
    finally:
        node.destroy_node()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('node', help='fully qualified lifecycle node name, e.g. /policy_node')
    parser.add_argument('--timeout', type=float, default=180.0, help='seconds (default: 180)')
    args = parser.parse_args(argv)
    if not args.timeout > 0:
        parser.error('--timeout must be > 0')
    rclpy.init()
    try:
        ok = wait_active(args.node, args.timeout)
    finally:
        rclpy.try_shutdown()
    print(
        f'{args.node} is active' if ok else f'{args.node} not active after {args.timeout:g} s',
        flush=True,
    )
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
