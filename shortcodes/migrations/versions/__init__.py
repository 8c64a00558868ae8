"""Store migration versions, oldest first by their ``down_revision`` chain."""
