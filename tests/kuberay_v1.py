"""The fields of KubeRay's ray.io/v1 RayService and RayCluster that Council's manifests use,
as pydantic models (after KubeRay's API reference, ray-operator/apis/ray/v1). `extra="forbid"`
everywhere Council writes fields, so a misspelt or misplaced key fails; pod templates are
checked separately against the Kubernetes schemas."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    labels: dict[str, str] = Field(default_factory=dict)


class PodTemplateSpec(BaseModel):
    model_config = ConfigDict(extra="allow")  # validated against the Kubernetes schemas
    spec: dict


class AutoscalerOptions(_Strict):
    upscalingMode: Literal["Default", "Aggressive", "Conservative"] | None = None
    idleTimeoutSeconds: int | None = Field(None, ge=0)
    resources: dict | None = None
    image: str | None = None
    imagePullPolicy: str | None = None
    env: list[dict] | None = None
    envFrom: list[dict] | None = None
    securityContext: dict | None = None
    volumeMounts: list[dict] | None = None
    version: Literal["v1", "v2"] | None = None


class HeadGroupSpec(_Strict):
    rayStartParams: dict[str, str] = Field(default_factory=dict)
    template: PodTemplateSpec
    serviceType: Literal["ClusterIP", "NodePort", "LoadBalancer"] | None = None
    headService: dict | None = None
    enableIngress: bool | None = None


class WorkerGroupSpec(_Strict):
    groupName: str
    replicas: int | None = Field(None, ge=0)
    minReplicas: int | None = Field(None, ge=0)
    maxReplicas: int | None = Field(None, ge=0)
    idleTimeoutSeconds: int | None = None
    rayStartParams: dict[str, str] = Field(default_factory=dict)
    template: PodTemplateSpec
    numOfHosts: int | None = Field(None, ge=1)
    scaleStrategy: dict | None = None
    suspend: bool | None = None


class RayClusterSpec(_Strict):
    rayVersion: str | None = None
    enableInTreeAutoscaling: bool | None = None
    autoscalerOptions: AutoscalerOptions | None = None
    headGroupSpec: HeadGroupSpec
    workerGroupSpecs: list[WorkerGroupSpec] = Field(default_factory=list)
    headServiceAnnotations: dict[str, str] | None = None
    suspend: bool | None = None
    managedBy: str | None = None
    gcsFaultToleranceOptions: dict | None = None


class RayServiceUpgradeStrategy(_Strict):
    type: Literal["NewCluster", "NewClusterWithIncrementalUpgrade", "None"]


class RayServiceSpec(_Strict):
    serveConfigV2: str
    rayClusterConfig: RayClusterSpec
    upgradeStrategy: RayServiceUpgradeStrategy | None = None
    serveService: dict | None = None
    excludeHeadPodFromServeSvc: bool | None = None
    deploymentUnhealthySecondThreshold: int | None = None
    serviceUnhealthySecondThreshold: int | None = None


class RayService(_Strict):
    apiVersion: Literal["ray.io/v1"]
    kind: Literal["RayService"]
    metadata: ObjectMeta
    spec: RayServiceSpec


class RayCluster(_Strict):
    apiVersion: Literal["ray.io/v1"]
    kind: Literal["RayCluster"]
    metadata: ObjectMeta
    spec: RayClusterSpec
