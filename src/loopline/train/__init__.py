"""loopline.train."""
