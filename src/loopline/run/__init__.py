"""loopline.run."""
