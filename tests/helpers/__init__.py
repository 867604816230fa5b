"""Helpers shared by the tests (real servers, small ONNX models, CLI runner, prerequisites)."""
