"""loopline.prep."""
