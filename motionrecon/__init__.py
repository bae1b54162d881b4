"""motionrecon: physics-based reconstruction of 3D human motion.

    from motionrecon import reconstruct
    rec = reconstruct(observations)          # -> Reconstruction

See README.md for the command line.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: importing the package must not pull in JAX/MuJoCo.
    if name in ("reconstruct", "Reconstruction", "ReconstructionConfig"):
        from motionrecon import reconstruct as _r

        return getattr(_r, name)
    if name == "Observations":
        from motionrecon.observations import Observations

        return Observations
    raise AttributeError(name)
