"""Pictures of sessions and generated poses (GIFs, contact sheets)."""
