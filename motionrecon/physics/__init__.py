"""Differentiable simulation of the humanoid (our own rigid-body dynamics and ground contact).

- `quat`: quaternion / rotation-vector maths.
- `contact`: smooth penalty contact with stiction on the contact spheres (feet, hands, knees, back, ...).
- `control`: keyframed PD targets, PD torques and soft joint limits.
- `rollout`: one simulation step, and a window rollout under `lax.scan`.
"""
