"""Where sessions come from: rosbag2 recordings and the simulated discussion."""
