"""The Kubernetes manifests render (kubectl kustomize) and every object validates against the schemas.

Built-in kinds are validated strictly (unknown fields fail) with ``kubernetes-validate``'s bundled
schemas, offline. KServe's InferenceService and KEDA's ScaledObject are custom resources whose
published schemas are not shipped here (and nothing is downloaded): they are checked for the
fields this deployment relies on instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
KUBERNETES = "1.30"
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (make k8s-tools installs it)")


def render(folder: str) -> list[dict]:
    res = subprocess.run(["kubectl", "kustomize", str(ROOT / folder)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [doc for doc in yaml.safe_load_all(res.stdout) if doc]


def validate(doc: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


@pytest.mark.parametrize("overlay", ["overlays/cpu", "overlays/gpu"])
def test_overlays_render_and_validate(overlay):
    docs = render(overlay)
    assert sorted(d["kind"] for d in docs) == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    for doc in docs:
        validate(doc)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    server = next(c for c in pod["containers"] if c["name"] == "server")
    assert server["readinessProbe"]["exec"]["command"][:3] == ["swintormer", "-q", "health"]  # the deep check
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert server["command"][:2] == ["swintormer", "serve"]  # supervised
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory" and {"name": "dshm", "mountPath": "/dev/shm"} in server["volumeMounts"]
    labels = deployment["spec"]["selector"]["matchLabels"]
    service = next(d for d in docs if d["kind"] == "Service")
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert service["spec"]["selector"] == labels == pdb["spec"]["selector"]["matchLabels"]
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "grpc", "metrics"}
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "swintormer_queue_ms_per_request"
    if overlay.endswith("gpu"):
        init = pod["initContainers"][0]
        assert "--flavour" in init["command"] and init["command"][init["command"].index("--flavour") + 1] == "gpu"
        assert init["resources"]["limits"]["nvidia.com/gpu"] == server["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert "/opt/tritonserver/bin/tritonserver" in server["command"]


def test_validation_catches_a_broken_manifest():
    import kubernetes_validate

    deployment = next(d for d in render("overlays/cpu") if d["kind"] == "Deployment")
    deployment["spec"]["replica"] = 2  # a typo of replicas
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


def test_custom_resources_have_the_fields_they_need():
    (isvc,) = render("kserve")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "triton" and model["storageUri"].startswith("pvc://")
    assert any(a.startswith("--http-restricted-api=") for a in model["args"]) and "--strict-readiness=true" in model["args"]
    (scaled,) = render("keda")
    assert (scaled["apiVersion"], scaled["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "swintormer"
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus" and "nv_inference_queue_duration_us" in trigger["metadata"]["query"]
    hpa_doc = (ROOT / "base" / "hpa.yaml").read_text()
    assert "nv_inference_queue_duration_us" in hpa_doc and "nv_inference_count" in hpa_doc  # the same metric, written out
