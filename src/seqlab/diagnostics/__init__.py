"""Instruments to look inside a trained model (``seqlab diagnose``).

- :mod:`.gradients`: ||dL/dh_t|| through time and the step Jacobians ds_t/ds_{t-1};
- :mod:`.gates`: how often gates saturate near 0 or 1;
- :mod:`.attention`: a Transformer's attention maps per layer and head;
- :mod:`.trajectories`: the hidden state's path on its top two principal components;
- :mod:`.report`: all of them on one checkpoint, writing a PNG and a JSON per analysis.
"""
from .attention import AttentionMaps, attention_maps
from .gates import GateSaturation, gate_saturation, gate_values, has_gates
from .gradients import GradientFlow, JacobianNorms, gradient_flow, jacobian_norms, spectral_norm, step_jacobian
from .reading import Reading, is_recurrent, read_sequence
from .report import ANALYSES, Diagnosis, diagnose, parse_analyses
from .trajectories import Trajectory, principal_components, state_trajectory

__all__ = [
    "ANALYSES", "AttentionMaps", "Diagnosis", "GateSaturation", "GradientFlow", "JacobianNorms", "Reading", "Trajectory",
    "attention_maps", "diagnose", "gate_saturation", "gate_values", "gradient_flow", "has_gates", "is_recurrent", "jacobian_norms",
    "parse_analyses", "principal_components", "read_sequence", "spectral_norm", "state_trajectory", "step_jacobian",
]
