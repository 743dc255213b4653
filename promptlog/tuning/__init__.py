"""Using the log to improve prompts: optimisers whose every candidate is an experiment
or a run."""
