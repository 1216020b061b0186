"""The KubeRay deployment, validated offline (no cluster is reachable here): YAML parses,
overlays render, pod templates validate against the Kubernetes schemas, serveConfigV2 against
Ray Serve's schema, and the RayService / RayCluster fields against KubeRay's v1 API."""

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from cluster.config import CouncilConfig
from kuberay_v1 import RayCluster, RayService

K8S = Path(__file__).resolve().parent.parent / "k8s"
K8S_VERSION = "1.30.0"
OVERLAYS = ["cpu", "gpu"]


def render(overlay: str) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (kubectl kustomize renders the overlays)")
    out = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
                         capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def pod_templates(spec: dict) -> list[dict]:
    head = spec["headGroupSpec"]["template"]
    return [head] + [g["template"] for g in spec.get("workerGroupSpecs", [])]


def validate_pod(template: dict) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": template["spec"]}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_every_manifest_parses():
    files = [p for p in K8S.rglob("*.yaml")]
    assert len(files) >= 7
    for path in files:
        assert list(yaml.safe_load_all(path.read_text())), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_render_a_valid_rayservice(overlay):
    docs = render(overlay)
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"RayService", "ConfigMap"}
    service = RayService.model_validate(kinds["RayService"])
    cluster = service.spec.rayClusterConfig
    assert cluster.headGroupSpec.rayStartParams["num-cpus"] == "0"
    assert cluster.enableInTreeAutoscaling and cluster.workerGroupSpecs[0].maxReplicas >= 4
    for template in pod_templates(kinds["RayService"]["spec"]["rayClusterConfig"]):
        validate_pod(template)
    head = cluster.headGroupSpec.template.spec["containers"][0]
    assert head["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8000}
    env = {e["name"]: e for e in head["env"]}
    assert env["COUNCIL_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "council-secrets"
    # the ConfigMap holds a config Council accepts
    council = CouncilConfig.from_dict(yaml.safe_load(kinds["ConfigMap"]["data"]["council.yaml"]))
    worker = cluster.workerGroupSpecs[0].template.spec["containers"][0]["resources"]["limits"]
    if overlay == "gpu":
        assert worker["nvidia.com/gpu"] == 1 and council.engine.kind == "vllm" and council.pool.num_gpus == 1
    else:
        assert "nvidia.com/gpu" not in worker and council.engine.kind == "torch"
        # Both models of the image are follower pools; the first is the default.
        assert {n: p.engine.model for n, p in council.pools.items()} == {"smol": "smollm2", "gemma": "gemma3-270m"}
        assert council.default_pool == "smol"


def test_serve_config_imports_the_app_and_validates():
    service = yaml.safe_load((K8S / "base" / "rayservice.yaml").read_text())
    serve_config = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    app = serve_config.applications[0]
    assert app.import_path == "serve_app:app" and app.route_prefix == "/"
    assert app.deployments[0].name == "CouncilIngress"
    import serve_app  # the import path resolves, and names that deployment

    assert serve_app.app is not None and serve_app.CouncilIngress.name == "CouncilIngress"


def test_the_dev_raycluster_and_the_secret_validate():
    cluster = yaml.safe_load((K8S / "raycluster.yaml").read_text())
    RayCluster.model_validate(cluster)
    for template in pod_templates(cluster["spec"]):
        validate_pod(template)
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    assert set(secret["stringData"]) == {"api-keys", "planner-api-key"}


def test_a_misspelt_field_is_caught():
    service = yaml.safe_load((K8S / "base" / "rayservice.yaml").read_text())
    service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(ValueError, match="maxReplica"):
        RayService.model_validate(service)
    template = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]
    template["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_pod(template)
