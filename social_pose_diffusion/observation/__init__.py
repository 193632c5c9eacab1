"""What the policy sees: proprioception and group features, rasters, and the encoder registry."""
