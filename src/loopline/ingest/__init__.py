"""loopline.ingest."""
