"""motionrecon: physics-based reconstruction of 3D human motion.

    from motionrecon import reconstruct, Observations
    rec = reconstruct(observations)          # -> Reconstruction

See README.md for the command line.
"""

__version__ = "0.1.0"

from motionrecon.jaxsetup import configure_xla  # noqa: E402

configure_xla()  # XLA reads its flags when JAX starts its runtime: before any computation

from motionrecon.observations import Observations  # noqa: E402,F401
from motionrecon.reconstruct import Reconstruction, ReconstructionConfig, reconstruct  # noqa: E402,F401
