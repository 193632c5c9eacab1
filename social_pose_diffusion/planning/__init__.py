"""From group frames to executed facilitator poses: the agent, the integrator and the plan follower."""
