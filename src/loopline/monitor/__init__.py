"""loopline.monitor."""
