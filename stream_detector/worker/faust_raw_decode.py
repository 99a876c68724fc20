"""Start-up patch of Faust: raw messages become events without the serializer registry.

Faust decodes every consumed message through its topic's ``Schema.compile`` decoder:
``Registry.loads_key``/``loads_value`` look up the codec by name, run the ``raw`` codec
(``want_bytes``: bytes stay as they are) and ``Registry._prepare_payload`` (with no type:
``Model._maybe_reconstruct``, which returns bytes unchanged). For the worker's input topic
(``raw`` key and value, no key or value type) that is an identity that cost 15% of the
worker's busy main-thread time at one record per message (py-spy, issue #13).

:func:`install` wraps ``Schema.compile``: for exactly that schema (both serializers
``"raw"``, both types None) the compiled decoder hands ``message.key`` and
``message.value`` to ``app.create_event`` when they are ``bytes`` or None (what aiokafka
gives), as upstream's chain would; any other value, and every other schema, goes through
upstream's decoder. :data:`UPSTREAM_SHA256` pins the source of every function of that
chain; :func:`install` refuses (logs, leaves Faust as it is) when one differs, and a unit
test fails, so an upgrade of faust-streaming is reviewed against this module.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Final

from stream_detector.worker import upstream_pins

__all__ = ["UPSTREAM_SHA256", "install", "installed", "upstream_matches"]

log = logging.getLogger(__name__)

UPSTREAM_SHA256: Final = {
    "faust.serializers.schemas.Schema.compile":
        "d46eec5ce3195b2c6752cb860a10946cee66ddf6a955f2ea44ac1568c0ecb9ad",
    "faust.serializers.registry.Registry.loads_key":
        "75262a2361a3bd256c346fcfa432182468dac4328afe48bcd0e62a9b6e3573be",
    "faust.serializers.registry.Registry.loads_value":
        "a9a8d9f63e03744fb9fcfbb3dfc03acd949032c0515fa2384c7b8c1d40378059",
    "faust.serializers.registry.Registry._prepare_payload":
        "0740e90d2a9088faaaf2626f4366e44b8d65f80d40e05c9842991b4284fc94e7",
    "faust.serializers.codecs.raw":
        "1427af60d89227ab2446936d93a44029f88e73f34969bced6f273f0fbaadc33b",
}
_state: dict[str, Any] = {}


def _upstream_sources() -> dict[str, str]:
    from faust.serializers import codecs
    from faust.serializers.registry import Registry
    from faust.serializers.schemas import Schema

    compile_ = _state.get("upstream", Schema.compile)
    return {"faust.serializers.schemas.Schema.compile": inspect.getsource(compile_),
            "faust.serializers.registry.Registry.loads_key":
            inspect.getsource(Registry.loads_key),
            "faust.serializers.registry.Registry.loads_value":
            inspect.getsource(Registry.loads_value),
            "faust.serializers.registry.Registry._prepare_payload":
            inspect.getsource(Registry._prepare_payload),
            "faust.serializers.codecs.raw": inspect.getsource(codecs.raw)}


def upstream_matches() -> dict[str, bool]:
    """For each function of the decode chain, whether its source is the one reviewed."""
    return upstream_pins.matches(_upstream_sources(), UPSTREAM_SHA256)


def installed() -> bool:
    """Whether :func:`install` patched Faust's schemas in this process."""
    return "upstream" in _state


def install() -> bool:
    """Patch ``Schema.compile`` (idempotent); False, with a warning, if upstream changed."""
    from faust.serializers.schemas import Schema

    if installed():
        return True
    found = upstream_matches()
    if upstream_pins.changed(found, found, patch="faust raw decode",
                             module="stream_detector/worker/faust_raw_decode.py", logger=log):
        return False
    _state["upstream"] = upstream = Schema.compile

    def compile_(self: Any, app: Any, **kwargs: Any) -> Any:
        slow = upstream(self, app, **kwargs)
        if not (self.key_serializer == self.value_serializer == "raw"
                and self.key_type is None and self.value_type is None):
            return slow
        create_event = app.create_event

        async def decode(message: Any, **options: Any) -> Any:
            key, value = message.key, message.value
            if (key is None or type(key) is bytes) and (value is None or type(value) is bytes):
                return create_event(key, value, message.headers, message)
            return await slow(message, **options)

        return decode

    Schema.compile = compile_  # type: ignore[method-assign]
    return True
