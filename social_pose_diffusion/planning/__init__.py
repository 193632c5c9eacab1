"""From group frames to executed facilitator poses.

The agent, the integrator and the plan follower.
"""
