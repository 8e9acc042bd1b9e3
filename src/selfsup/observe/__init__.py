"""Progress reporting and logging."""
