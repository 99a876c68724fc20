"""Allow ``python -m stream_detector``."""

from stream_detector.cli import main

main()
