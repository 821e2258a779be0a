"""seqlab: sequence models from the vanilla RNN to the Transformer, behind one state interface."""
from .registry import backbone_names, build_backbone

__version__ = "0.1.0"
__all__ = ["build_backbone", "backbone_names", "__version__"]
