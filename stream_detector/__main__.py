"""Allow ``python -m stream_detector``."""

from stream_detector.cli.main import main

main()
