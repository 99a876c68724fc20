"""The live anomaly explorer (``stream-detector ui``): a web page on 127.0.0.1 that follows
the anomaly topic and the input topic.

Rooms: :mod:`~stream_detector.ui.state` (what is known, bounded, pure),
:mod:`~stream_detector.ui.views` (the swim lane, table and key queries, pure),
:mod:`~stream_detector.ui.follow` (the Kafka follower thread),
:mod:`~stream_detector.ui.thresholds` (Redis thresholds through the threshold store),
:mod:`~stream_detector.ui.server` (aiohttp endpoints and server-sent events),
:mod:`~stream_detector.ui.run` (wiring), and ``static/`` (the page; charts by the installed
plotly package's plotly.min.js).
"""

__all__: list[str] = []
