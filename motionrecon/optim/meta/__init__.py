"""Meta-training of learned optimizers: tasks (`tasks.py`), the PES gradient estimator (`pes.py`) and the
outer training loop with checkpoints and metrics (`train.py`). Tasks, optimizers and the trainer are kept
apart (as in learned_optimization): a new task or optimizer needs no change to the trainer."""
