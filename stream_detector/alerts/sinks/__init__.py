"""Where alert payloads go: one module per sink behind :class:`.base.Sink`, listed in
:mod:`.registry`."""
