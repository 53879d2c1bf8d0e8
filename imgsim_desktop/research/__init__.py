"""The research tools: perturbation recovery, collection map, backbone comparison, HTML report.

No Qt here (tests/test_layers.py checks it): the CLI runs these headless and the GUI runs them
in its research worker.
"""
