"""Training: the pretraining loop, schedules, optimisers, checkpoints."""
