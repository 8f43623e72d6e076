"""loopline.cli."""
