"""loopline.serve."""
