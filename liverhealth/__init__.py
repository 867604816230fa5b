"""LiverHealth: liver and liver-tumour CT segmentation workstation."""

__version__ = "0.1.0"
