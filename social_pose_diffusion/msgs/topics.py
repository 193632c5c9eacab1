"""Topic names and frames of the graph and of session bags (layouts in the README).

Node topics are relative so that ``namespace:=`` and remaps work; bag topics
are the absolute names a recording holds.
"""

CAMERA_FRAME = 'camera'

# Session bags (sources.bags) and the replay driver.
CAMERA_TOPIC = '/camera/image_raw'
COMPRESSED_SUFFIX = '/compressed'
COMPRESSED_TOPIC = CAMERA_TOPIC + COMPRESSED_SUFFIX
GROUP_TOPIC = '/humans/keypoints'
FACILITATOR_TOPIC = '/facilitator/ground_truth'
STATE_TOPIC = '/session/state'
INFO_TOPIC = '/session/info'

# The node graph.
EXTERNAL_KEYPOINTS_TOPIC = '/humans/keypoints_external'
OBSERVED_TOPIC = '/facilitator/observed'
POSE_TOPIC = '/facilitator/pose'
JOINT_STATES_TOPIC = '/facilitator/joint_states'
MARKERS_TOPIC = '/facilitator/markers'
DIAGNOSTICS_TOPIC = '/diagnostics'
