"""The offline stack: emulated AWS (moto) on loopback running the real template.yaml.

``python -m local.stack`` serves until Ctrl-C; ``python -m local.demo`` replays ``events/`` and
checks the findings. See docs/offline-stack.md.
"""
