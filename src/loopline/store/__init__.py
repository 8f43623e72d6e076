"""loopline.store."""
