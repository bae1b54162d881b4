"""`mujoco.mjx`, imported without its stdout notice about the optional Warp backend."""

import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx  # noqa: F401
