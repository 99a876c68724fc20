"""Wire contracts of stream-detector: input records, anomaly events and the model card.

Every shape that crosses a process boundary is defined here, typed and versioned
(``schema_version``); no other package defines a record shape. This package imports
none of the project's other packages.
"""

__all__: list[str] = []
