"""The worker settings that deploy/ renders (Kubernetes overlay, compose override) connect to
a real SASL_SSL broker and a TLS redis-server once hosts, ports, CA paths and secrets are
filled in: the manifests name working settings, not merely valid ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_render import Rendered, render_compose, render_k8s
from secure_services import PLAIN_PASSWORD, REDIS_PASSWORD, SCRAM_PASSWORD, Pki

from stream_detector.connectivity import check_kafka, check_redis
from stream_detector.services.process import ServiceHandle
from stream_detector.settings import Settings


@pytest.mark.parametrize("deployment", ["kubernetes", "compose"])
def test_deployed_settings_reach_the_secured_services(
    deployment: str, secure_kafka: ServiceHandle, secure_redis: ServiceHandle,
    secure_pki: Pki, tmp_path: Path,
) -> None:
    rendered: Rendered = render_k8s() if deployment == "kubernetes" else render_compose(tmp_path)
    env = {k[len("STREAM_DETECTOR_"):].lower(): v for k, v in rendered.env.items()}
    mechanism = env["kafka_sasl_mechanism"]
    env.update(
        kafka_url=f"kafka://127.0.0.1:{secure_kafka.port}",
        redis_url=f"rediss://127.0.0.1:{secure_redis.port}/0",
        kafka_ssl_cafile=str(secure_pki.ca), redis_ssl_ca_certs=str(secure_pki.ca),
        kafka_sasl_password=SCRAM_PASSWORD if mechanism.startswith("SCRAM") else PLAIN_PASSWORD,
        redis_password=REDIS_PASSWORD,
    )
    settings = Settings(**env)
    assert check_kafka(settings, timeout=10) == 1
    check_redis(settings)
    credentials = settings.faust_broker_credentials()  # what the Faust worker connects with
    assert credentials.mechanism.value == mechanism and credentials.ssl_context is not None
