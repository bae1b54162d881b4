"""Differentiable simulation of the humanoid (MuJoCo MJX + our own foot contact).

- `quat`: quaternion / rotation-vector maths.
- `contact`: smooth penalty contact with stiction on the foot spheres.
- `control`: keyframed PD targets, PD torques and soft joint limits.
- `rollout`: one simulation step, and a window rollout under `lax.scan`.
"""
