"""Batch evaluation on the data sets' splits (`motionrecon eval`).

- `batch`: one split entry -> one reconstruction folder (`run_entry`), and the
  ways to run many: in this process, in worker processes, or as Ray tasks.
- `tables`: the results table (Markdown and CSV) from the folders on disk.
"""
