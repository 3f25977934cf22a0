#!/usr/bin/env python3
"""Offline check of the deployment manifests in deploy/, without a cluster.

    .venv/bin/python tools/check_manifests.py [PATH ...] [--kubernetes-version 1.37]
    .venv/bin/python tools/check_manifests.py --server-args [PATH ...]   # the server args, as JSON

PATH: manifest files or folders (searched for *.yaml and *.yml); deploy/ by default. Every
YAML document is checked by its apiVersion:

Core Kubernetes objects (deploy/kubernetes: Deployment, Service, HorizontalPodAutoscaler)
  * validated with kubernetes-validate against Kubernetes' own JSON schemas in strict mode,
    so a misspelt or misplaced field (`readinessProbes`, `containerport`) is an error, as it
    is for `kubectl apply --validate=strict`; the newest Kubernetes version the package
    bundles unless --kubernetes-version says otherwise;
  * a Deployment's selector matches its pod labels; a Service selects a Deployment's pods
    and targets one of its container ports; an HPA scales a Deployment of the set and
    minReplicas <= maxReplicas.

KServe objects (deploy/kserve), whose CRD schemas kubernetes-validate does not have
  * ClusterServingRuntime / ServingRuntime (serving.kserve.io/v1alpha1): only fields
    KServe's ServingRuntimeSpec knows; protocolVersions includes v2; supportedModelFormats
    has onnx, with a quoted version and a priority >= 1; not multiModel; exactly one
    container, named kserve-container, with --model-dir=/mnt/models (where KServe's storage
    initializer puts the model) and --model={{.Name}}; the Prometheus annotations name the
    serving port; the pod-level parts (containers, volumes, tolerations, ...) are wrapped
    into a Pod and validated against the core schema like the objects above.
  * InferenceService (serving.kserve.io/v1beta1): deploymentMode RawDeployment; a
    predictor.model with modelFormat onnx, runtime visionpool and a storageUri; min/max
    protocolVersion v2 (KServe assumes v1 when unset); min/max replicas sane for
    RawDeployment (no scale to zero) and an HPA metric (cpu or memory);
    the model container and the predictor's pod fields validated against the core Pod
    schema; when the runtime is in the set, it supports the format and protocol, and its
    args (with the model's appended, as KServe merges them) keep the shutdown timing.

Every visionpool server container (image naming visionpool, or a KServe runtime's
kserve-container) must also:
  * run `serve` with --http-port equal to a declared TCP containerPort (8080 under KServe);
  * have a startupProbe and readinessProbe on /v2/health/ready and a livenessProbe on
    /v2/health/live, on that port (by number or name);
  * set cpu and memory requests equal to limits, cpu a whole number of CPUs (Guaranteed
    QoS; the pool sizes itself from the CPU quota);
  * run as non-root (runAsNonRoot, runAsUser not 0), without privilege escalation, with
    capabilities drop ALL, a RuntimeDefault/Localhost seccomp profile (container or pod)
    and a read-only root filesystem;
  * with that read-only root: write its socket folder and --cache-dir under a writable
    volume mount, and not put --socket directly in an emptyDir's root (world-writable, which
    the server refuses unless --allow-shared-socket-dir);
  * stop in time: --shutdown-delay < --graceful-timeout < the pod's
    terminationGracePeriodSeconds (30 when unset).

Prints each problem as `FILE: problem` and exits 1 if there is any, else prints a summary
and exits 0. Exit 2: bad usage, or kubernetes-validate missing.
"""

import argparse
import json
import os
import re
import sys
from fractions import Fraction
from pathlib import Path

try:
    import yaml
    import kubernetes_validate
    from kubernetes_validate import utils as kv_utils
except ImportError as error:  # pragma: no cover - depends on the interpreter
    sys.exit(f"check_manifests.py needs PyYAML and kubernetes-validate ({error}); run it with .venv/bin/python (tools/setup.sh installs them)")

ROOT = Path(__file__).resolve().parent.parent

KSERVE_GROUP = "serving.kserve.io"
RUNTIME_KINDS = {"ClusterServingRuntime", "ServingRuntime"}
RUNTIME_API = "serving.kserve.io/v1alpha1"
ISVC_API = "serving.kserve.io/v1beta1"
KSERVE_CONTAINER = "kserve-container"
KSERVE_MODEL_DIR = "/mnt/models"
KSERVE_HTTP_PORT = 8080
RUNTIME_NAME = "visionpool"
MODEL_FORMAT = "onnx"
DEFAULT_GRACE_SECONDS = 30

# ServingRuntimeSpec's fields (kserve/kserve pkg/apis/serving/v1alpha1/servingruntime_types.go:
# the spec's own fields and the inlined ServingRuntimePodSpec).
RUNTIME_SPEC_FIELDS = {
    "supportedModelFormats", "multiModel", "disabled", "protocolVersions", "workerSpec",
    "containers", "volumes", "nodeSelector", "affinity", "tolerations", "labels", "annotations",
    "imagePullSecrets", "hostIPC", "grpcEndpoint", "grpcDataEndpoint", "httpDataEndpoint",
    "replicas", "storageHelper", "builtInAdapter",
}
# The parts of ServingRuntimePodSpec that are core PodSpec fields, validated as a Pod.
RUNTIME_POD_FIELDS = ("containers", "volumes", "nodeSelector", "affinity", "tolerations", "imagePullSecrets", "hostIPC")
SUPPORTED_MODEL_FORMAT_FIELDS = {"name", "version", "autoSelect", "priority"}
# InferenceServiceSpec's components.
ISVC_SPEC_FIELDS = {"predictor", "transformer", "explainer"}
# PredictorSpec's own fields and the inlined ComponentExtensionSpec (kserve/kserve
# pkg/apis/serving/v1beta1/predictor.go and component.go); everything else on a predictor is
# the inlined PodSpec and goes to the core Pod schema.
PREDICTOR_IMPLEMENTATIONS = {"sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml", "lightgbm", "paddle", "model"}
PREDICTOR_EXTENSION_FIELDS = {
    "storageUris", "workerSpec", "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType",
    "autoScaling", "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels",
    "annotations", "deploymentStrategy",
}
# ModelSpec's fields beyond the inlined core Container (model.go, PredictorExtensionSpec).
MODEL_FIELDS = {"modelFormat", "runtime", "storageUri", "runtimeVersion", "protocolVersion", "storage"}
RAW_DEPLOYMENT_SCALE_METRICS = {"cpu", "memory"}

# visionpool serve's flags that take no value (`visionpool serve --help`).
SERVE_SWITCHES = {
    "--oversubscribe", "--lock-slots", "--no-cache", "--spinning", "--no-spinning", "--allow-shared-socket-dir",
    "--allow-non-loopback", "--access-log", "--help", "-h",
}
SERVE_DEFAULT_GRACEFUL_TIMEOUT = 20.0
SERVE_DEFAULT_SHUTDOWN_DELAY = 0.0
SERVER_UID = 65532
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"


class Report:
    def __init__(self):
        self.problems = []

    def add(self, file, message):
        self.problems.append((file, message))


# ---------------------------------------------------------------- helpers


def display(path):
    """A path relative to the current folder when it lies under it, else absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$")
_SUFFIX = {
    None: Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "k": Fraction(10**3),
    "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}


def quantity(value):
    """A Kubernetes resource quantity ("2", 2, "1500m", "2Gi") as an exact Fraction, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return Fraction(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number = Fraction(match.group(1))
    if match.group(3) is not None:
        return number * Fraction(10) ** int(match.group(3))
    return number * _SUFFIX[match.group(2)]


def dig(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def schema_problem(error, drop=0):
    """One kubernetes-validate error as `at PATH: message`, the first `drop` steps of PATH left out."""
    path = ""
    for part in list(getattr(error, "path", []) or [])[drop:]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{'at ' + path + ': ' if path else ''}{error.message}"


class Validator:
    """kubernetes-validate's strict schemas for one Kubernetes version."""

    def __init__(self, version):
        self.version = version

    def problems(self, document, drop=0):
        try:
            kubernetes_validate.validate(document, self.version, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [schema_problem(e, drop) for e in self.every_error(document, error)]
        except kubernetes_validate.SchemaNotFoundError as error:
            return [error.message]
        return []

    @staticmethod
    def every_error(document, first):
        """kubernetes-validate stops at the first error; this lists them all, with the same
        bundled schema and definitions, so one run shows every misspelt field. Falls back to
        `first` alone should the package's layout change."""
        try:
            import jsonschema
            from referencing import Registry, Resource

            full = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) == first.version][-1]
            folder = f"kubernetes-json-schema/v{full}-local-strict"
            api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", document["apiVersion"])
            schema = kv_utils.schema_contents(f"{folder}/{document['kind'].lower()}-{api}.json", full)
            definitions = kv_utils.schema_contents(f"{folder}/_definitions.json", full)
            registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
            validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
            errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.path])
            return errors or [first]
        except Exception:  # noqa: BLE001 - any surprise in the internals: the one error is still right
            return [first]

    def pod_problems(self, pod_spec, name, what):
        """Validates pod-level fields (embedded in a KServe object) as a core Pod."""
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}
        return [f"{what} (validated as a core PodSpec): {problem}" for problem in self.problems(pod, drop=1)]


# ---------------------------------------------------------------- the server's container


def parse_serve_args(args):
    """(subcommand, {flag: value}, problems) for a visionpool command line; later flags win."""
    problems = []
    items = [str(item) for item in (args or [])]
    subcommand = items[0] if items and not items[0].startswith("-") else None
    flags = {}
    index = 1 if subcommand else 0
    while index < len(items):
        item = items[index]
        if not item.startswith("-"):
            problems.append(f"stray argument {item!r} (not the value of a flag)")
        elif "=" in item:
            name, value = item.split("=", 1)
            flags[name] = value
        elif item in SERVE_SWITCHES:
            flags[item] = True
        elif index + 1 < len(items) and not items[index + 1].startswith("--"):
            flags[item] = items[index + 1]
            index += 1
        else:
            problems.append(f"{item} needs a value")
        index += 1
    return subcommand, flags, problems


def seconds_flag(flags, name, default, problems):
    value = flags.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        problems.append(f"{name} {value!r} is not a number of seconds")
        return None


def container_port_numbers(container):
    """{name or number: containerPort} of a container's TCP ports."""
    ports = {}
    for port in container.get("ports") or []:
        if not isinstance(port, dict) or (port.get("protocol") or "TCP") != "TCP":
            continue
        number = port.get("containerPort")
        ports[number] = number
        if port.get("name"):
            ports[port["name"]] = number
    return ports


def check_timing(flags, grace, where):
    """--shutdown-delay < --graceful-timeout < terminationGracePeriodSeconds."""
    unreadable = []
    graceful = seconds_flag(flags, "--graceful-timeout", SERVE_DEFAULT_GRACEFUL_TIMEOUT, unreadable)
    delay = seconds_flag(flags, "--shutdown-delay", SERVE_DEFAULT_SHUTDOWN_DELAY, unreadable)
    problems = [f"{where}: {problem}" for problem in unreadable]
    if isinstance(grace, bool) or not isinstance(grace, (int, float)):
        return problems  # the schema check reports a grace period that is not a number
    if graceful is not None and graceful >= grace:
        problems.append(
            f"{where}: --graceful-timeout {graceful:g} must be less than the pod's terminationGracePeriodSeconds {grace:g}: "
            "the kubelet kills the server with SIGKILL before it has drained")
    if graceful is not None and delay is not None and delay >= graceful:
        problems.append(
            f"{where}: --shutdown-delay {delay:g} must be less than --graceful-timeout {graceful:g}, which it counts toward "
            "(otherwise in-flight requests get no time to drain)")
    return problems


def check_resources(resources, where):
    problems = []
    resources = resources or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for name in ("cpu", "memory"):
        request, limit = requests.get(name), limits.get(name)
        if request is None or limit is None:
            problems.append(f"{where}: resources need both requests.{name} and limits.{name} (Guaranteed QoS), got requests {request!r}, limits {limit!r}")
            continue
        request_value, limit_value = quantity(request), quantity(limit)
        if request_value is None or limit_value is None:
            problems.append(f"{where}: {name} {request!r} / {limit!r} is not a Kubernetes quantity")
            continue
        if request_value != limit_value:
            problems.append(
                f"{where}: {name} request {request!r} differs from its limit {limit!r}; requests must equal limits "
                "for Guaranteed QoS (and exclusive cores under the static CPU manager)")
        if name == "cpu":
            for label, raw, value in (("request", request, request_value), ("limit", limit, limit_value)):
                if value.denominator != 1 or value < 1:
                    problems.append(
                        f"{where}: cpu {label} {raw!r} is not a whole number of CPUs; the worker pool sizes itself for "
                        "floor(CPU quota) and the static CPU manager gives exclusive cores only to integer requests")
    return problems


def check_probes(container, http_port, ports, where):
    problems = []
    for probe, path in (("startupProbe", READY_PATH), ("readinessProbe", READY_PATH), ("livenessProbe", LIVE_PATH)):
        spec = container.get(probe)
        if not isinstance(spec, dict):
            problems.append(f"{where}: needs a {probe} (httpGet {path})")
            continue
        get = spec.get("httpGet")
        if not isinstance(get, dict):
            problems.append(f"{where}: {probe} must be an httpGet on {path}")
            continue
        if get.get("path") != path:
            problems.append(f"{where}: {probe} checks {get.get('path')!r}, should be {path}")
        port = get.get("port")
        if http_port is not None and ports.get(port) != http_port:
            problems.append(f"{where}: {probe} port {port!r} is not the server's HTTP port {http_port}")
    startup = container.get("startupProbe")
    if isinstance(startup, dict):
        budget = (startup.get("periodSeconds") or 10) * (startup.get("failureThreshold") or 3)
        if budget < 60:
            problems.append(
                f"{where}: startupProbe allows {budget} s (periodSeconds × failureThreshold); a first start compiles "
                "the model: allow a minute or more")
    return problems


def check_security(container, pod_security, where):
    problems = []
    security = container.get("securityContext") or {}
    pod_security = pod_security or {}

    def effective(key):
        return security[key] if key in security else pod_security.get(key)

    if effective("runAsNonRoot") is not True:
        problems.append(f"{where}: securityContext.runAsNonRoot must be true")
    if effective("runAsUser") == 0:
        problems.append(f"{where}: securityContext.runAsUser 0 is root; the image's user is {SERVER_UID}")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
    drop = dig(security, "capabilities", "drop") or []
    if "ALL" not in drop:
        problems.append(f"{where}: securityContext.capabilities.drop must include ALL")
    if dig(security, "capabilities", "add"):
        problems.append(f"{where}: securityContext.capabilities.add should be empty (the server needs none)")
    if security.get("privileged") is True:
        problems.append(f"{where}: must not be privileged")
    seccomp = (security.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: seccompProfile.type must be RuntimeDefault (or Localhost), on the container or the pod")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true (mount an emptyDir at /tmp for what the server writes)")
    return problems


def writable_mounts(container, volumes):
    """{mountPath: volume} for the container's writable mounts."""
    by_name = {volume.get("name"): volume for volume in volumes or [] if isinstance(volume, dict)}
    mounts = {}
    for mount in container.get("volumeMounts") or []:
        if isinstance(mount, dict) and not mount.get("readOnly") and mount.get("mountPath"):
            mounts[mount["mountPath"].rstrip("/") or "/"] = by_name.get(mount.get("name"), {})
    return mounts


def under(path, folder):
    return folder == "/" or path == folder or path.startswith(folder + "/")


def check_writable_paths(container, flags, volumes, read_only_root, uid, where):
    problems = []
    mounts = writable_mounts(container, volumes)
    socket = flags.get("--socket")
    socket_folder = os.path.dirname(socket) if isinstance(socket, str) else f"/tmp/visionpool-{uid}"
    cache = flags.get("--cache-dir")
    if read_only_root:
        if not any(under(socket_folder, mount) for mount in mounts):
            problems.append(
                f"{where}: the socket's folder {socket_folder} is on the read-only root filesystem: "
                "mount a writable volume (an emptyDir at /tmp) there")
        if "--no-cache" not in flags:
            if not isinstance(cache, str):
                problems.append(f"{where}: with a read-only root filesystem, set --cache-dir under a writable volume (e.g. /tmp/cache), or --no-cache")
            elif not any(under(cache, mount) for mount in mounts):
                problems.append(f"{where}: --cache-dir {cache} is on the read-only root filesystem: put it under a writable volume mount")
    if isinstance(socket, str) and "--allow-shared-socket-dir" not in flags:
        volume = mounts.get(socket_folder.rstrip("/") or "/")
        if volume is not None and "emptyDir" in volume:
            problems.append(
                f"{where}: --socket {socket} sits in the root of an emptyDir, which is writable by every user (0777): "
                "the server refuses such a folder. Leave --socket out (it defaults to the private /tmp/visionpool-UID/) "
                "or use a subfolder")
    return problems


def check_server_container(container, pod_spec, grace, where, kserve):
    """Everything a visionpool server container must get right; returns problems."""
    problems = []
    command = container.get("command")
    if command and not str(command[-1]).endswith("visionpool"):
        problems.append(f"{where}: command {command!r} does not run visionpool (leave it unset: the image's entrypoint is visionpool)")
    subcommand, flags, arg_problems = parse_serve_args(container.get("args"))
    problems += [f"{where}: args: {problem}" for problem in arg_problems]
    if subcommand != "serve":
        problems.append(f"{where}: args must start with the subcommand serve, got {subcommand!r}")

    ports = container_port_numbers(container)
    http_port = None
    raw_port = flags.get("--http-port")
    if raw_port is None:
        problems.append(f"{where}: needs --http-port (without it the server listens on its Unix socket only)")
    else:
        try:
            http_port = int(raw_port)
        except (TypeError, ValueError):
            problems.append(f"{where}: --http-port {raw_port!r} is not a port number")
    if http_port is not None and http_port not in ports.values():
        problems.append(f"{where}: --http-port {http_port} is not among the container's TCP ports {sorted(set(ports.values()), key=str)}")
    if kserve and http_port is not None and http_port != KSERVE_HTTP_PORT:
        problems.append(f"{where}: KServe sends traffic to port {KSERVE_HTTP_PORT}; --http-port is {http_port}")

    if kserve:
        if flags.get("--model-dir") != KSERVE_MODEL_DIR:
            problems.append(f"{where}: needs --model-dir={KSERVE_MODEL_DIR}, where KServe's storage initializer puts the model (got {flags.get('--model-dir')!r})")
        if "{{.Name}}" not in str(flags.get("--model", "")):
            problems.append(f"{where}: --model should be {{{{.Name}}}}, the InferenceService's name, so requests go to /v2/models/NAME/infer (got {flags.get('--model')!r})")

    problems += check_probes(container, http_port, ports, where)
    problems += check_resources(container.get("resources"), where)
    pod_security = pod_spec.get("securityContext") if isinstance(pod_spec, dict) else None
    problems += check_security(container, pod_security, where)
    security = container.get("securityContext") or {}
    uid = security.get("runAsUser", (pod_security or {}).get("runAsUser", SERVER_UID))
    read_only_root = security.get("readOnlyRootFilesystem") is True
    problems += check_writable_paths(container, flags, (pod_spec or {}).get("volumes"), read_only_root, uid, where)
    problems += check_timing(flags, grace, where)
    return problems


def is_server_image(container):
    return "visionpool" in str(container.get("image", ""))


# ---------------------------------------------------------------- core objects


def pod_template(document):
    """The pod spec of a workload (Deployment, StatefulSet, DaemonSet, Job, Pod) or None."""
    kind = document.get("kind")
    if kind == "Pod":
        return document.get("spec")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return dig(document, "spec", "template", "spec")
    return None


def check_core(document, validator, report, file):
    for problem in validator.problems(document):
        report.add(file, f"{document.get('kind')}/{dig(document, 'metadata', 'name')}: {problem}")
    kind, name = document.get("kind"), dig(document, "metadata", "name")
    pod_spec = pod_template(document)
    if isinstance(pod_spec, dict):
        grace = pod_spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        servers = [c for c in pod_spec.get("containers") or [] if isinstance(c, dict) and is_server_image(c)]
        for container in servers:
            where = f"{kind}/{name} container {container.get('name')}"
            for problem in check_server_container(container, pod_spec, grace, where, kserve=False):
                report.add(file, problem)
    if kind == "Deployment":
        selector = dig(document, "spec", "selector", "matchLabels") or {}
        labels = dig(document, "spec", "template", "metadata", "labels") or {}
        if any(labels.get(key) != value for key, value in selector.items()):
            report.add(file, f"Deployment/{name}: spec.selector.matchLabels {selector} does not match the pod template's labels {labels}")


def check_cross_references(documents, report):
    """Services and HPAs refer to Deployments of the set."""
    deployments = {(dig(doc, "metadata", "name")): doc for _, doc in documents if doc.get("kind") == "Deployment"}
    for file, doc in documents:
        kind, name = doc.get("kind"), dig(doc, "metadata", "name")
        if kind == "Service" and deployments:
            selector = dig(doc, "spec", "selector") or {}
            chosen = [
                d for d in deployments.values()
                if selector and all((dig(d, "spec", "template", "metadata", "labels") or {}).get(k) == v for k, v in selector.items())
            ]
            if not chosen:
                report.add(file, f"Service/{name}: selector {selector} selects the pods of no Deployment here ({', '.join(sorted(deployments))})")
            for deployment in chosen:
                ports = {}
                for container in dig(deployment, "spec", "template", "spec", "containers") or []:
                    ports.update(container_port_numbers(container))
                for port in dig(doc, "spec", "ports") or []:
                    target = port.get("targetPort", port.get("port"))
                    if target not in ports:
                        report.add(file, f"Service/{name}: port {port.get('port')} targets {target!r}, not a container port of Deployment/{dig(deployment, 'metadata', 'name')}")
        if kind == "HorizontalPodAutoscaler":
            target = dig(doc, "spec", "scaleTargetRef") or {}
            if target.get("kind") == "Deployment" and deployments and target.get("name") not in deployments:
                report.add(file, f"HorizontalPodAutoscaler/{name}: scales Deployment/{target.get('name')}, which is not among {sorted(deployments)}")
            low, high = dig(doc, "spec", "minReplicas") or 1, dig(doc, "spec", "maxReplicas")
            if isinstance(high, int) and isinstance(low, int) and low > high:
                report.add(file, f"HorizontalPodAutoscaler/{name}: minReplicas {low} exceeds maxReplicas {high}")


# ---------------------------------------------------------------- KServe


def check_runtime(document, validator, report, file):
    kind, name = document.get("kind"), dig(document, "metadata", "name")
    label = f"{kind}/{name}"
    if document.get("apiVersion") != RUNTIME_API:
        report.add(file, f"{label}: apiVersion must be {RUNTIME_API}, got {document.get('apiVersion')!r}")
    if not name:
        report.add(file, f"{kind}: metadata.name is missing")
    spec = document.get("spec")
    if not isinstance(spec, dict):
        report.add(file, f"{label}: spec is missing")
        return
    for key in sorted(set(spec) - RUNTIME_SPEC_FIELDS):
        report.add(file, f"{label}: spec.{key} is not a field of KServe's ServingRuntimeSpec")

    protocols = spec.get("protocolVersions") or []
    if "v2" not in protocols:
        report.add(file, f"{label}: spec.protocolVersions must include v2 (the Open Inference Protocol the server speaks), got {protocols!r}")
    formats = spec.get("supportedModelFormats") or []
    if not any(isinstance(f, dict) and f.get("name") == MODEL_FORMAT for f in formats):
        report.add(file, f"{label}: spec.supportedModelFormats must include name {MODEL_FORMAT}")
    for index, model_format in enumerate(formats):
        where = f"{label}: spec.supportedModelFormats[{index}]"
        if not isinstance(model_format, dict) or not model_format.get("name"):
            report.add(file, f"{where} needs a name")
            continue
        for key in sorted(set(model_format) - SUPPORTED_MODEL_FORMAT_FIELDS):
            report.add(file, f"{where}.{key} is not a field of SupportedModelFormat")
        if "version" in model_format and not isinstance(model_format["version"], str):
            report.add(file, f"{where}.version must be a string (quote it: \"{model_format['version']}\")")
        if "autoSelect" in model_format and not isinstance(model_format["autoSelect"], bool):
            report.add(file, f"{where}.autoSelect must be true or false")
        priority = model_format.get("priority")
        if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool) or priority < 1):
            report.add(file, f"{where}.priority must be an integer of at least 1, got {priority!r}")
    if spec.get("multiModel") is True:
        report.add(file, f"{label}: spec.multiModel must be false: the server serves one model per pod")

    containers = spec.get("containers") or []
    if len(containers) != 1:
        report.add(file, f"{label}: spec.containers must hold exactly one container ({KSERVE_CONTAINER}), got {len(containers)}")
    for container in containers:
        if isinstance(container, dict) and container.get("name") != KSERVE_CONTAINER:
            report.add(file, f"{label}: container {container.get('name')!r} must be named {KSERVE_CONTAINER}: KServe merges the predictor into the container of that name")

    pod_spec = {key: spec[key] for key in RUNTIME_POD_FIELDS if key in spec}
    pod_spec.setdefault("containers", [])
    for problem in validator.pod_problems(pod_spec, name or "runtime", f"{label} spec"):
        report.add(file, problem)

    server = next((c for c in containers if isinstance(c, dict) and c.get("name") == KSERVE_CONTAINER), None)
    if server is None and containers and isinstance(containers[0], dict):
        server = containers[0]
    if server is not None:
        where = f"{label} container {server.get('name')}"
        # A ServingRuntime cannot set the pod's grace period: KServe's default (Kubernetes') applies
        # unless an InferenceService sets it; check_isvc checks those.
        for problem in check_server_container(server, pod_spec, DEFAULT_GRACE_SECONDS, where, kserve=True):
            report.add(file, problem)
        http_port = None
        try:
            http_port = int(parse_serve_args(server.get("args"))[1].get("--http-port"))
        except (TypeError, ValueError):
            pass
        annotations = spec.get("annotations") or {}
        scrape_port, scrape_path = annotations.get("prometheus.kserve.io/port"), annotations.get("prometheus.kserve.io/path")
        if scrape_port is None or scrape_path is None:
            report.add(file, f"{label}: spec.annotations needs prometheus.kserve.io/port and prometheus.kserve.io/path (the server's /metrics)")
        else:
            if http_port is not None and str(scrape_port) != str(http_port):
                report.add(file, f"{label}: prometheus.kserve.io/port {scrape_port!r} is not the server's HTTP port {http_port}")
            if scrape_path != "/metrics":
                report.add(file, f"{label}: prometheus.kserve.io/path {scrape_path!r} should be /metrics")
        if not isinstance(scrape_port, (str, type(None))):
            report.add(file, f"{label}: annotation values are strings: quote prometheus.kserve.io/port")


def check_isvc(document, validator, runtimes, report, file):
    name = dig(document, "metadata", "name")
    label = f"InferenceService/{name}"
    if document.get("apiVersion") != ISVC_API:
        report.add(file, f"{label}: apiVersion must be {ISVC_API}, got {document.get('apiVersion')!r}")
    if not name:
        report.add(file, "InferenceService: metadata.name is missing")
    elif not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):
        report.add(file, f"{label}: the name must be lower-case letters, digits and '-', starting with a letter")
    mode = (dig(document, "metadata", "annotations") or {}).get("serving.kserve.io/deploymentMode")
    if mode != "RawDeployment":
        report.add(file, f"{label}: metadata.annotations serving.kserve.io/deploymentMode must be RawDeployment, got {mode!r}")
    spec = document.get("spec")
    if not isinstance(spec, dict):
        report.add(file, f"{label}: spec is missing")
        return
    for key in sorted(set(spec) - ISVC_SPEC_FIELDS):
        report.add(file, f"{label}: spec.{key} is not a field of InferenceServiceSpec")
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        report.add(file, f"{label}: spec.predictor is missing")
        return
    frameworks = sorted(key for key in predictor if key in PREDICTOR_IMPLEMENTATIONS)
    if frameworks != ["model"]:
        report.add(file, f"{label}: spec.predictor must use `model` (with runtime {RUNTIME_NAME}) and no other predictor, got {frameworks}")
    model = predictor.get("model") if isinstance(predictor.get("model"), dict) else {}

    format_name = dig(model, "modelFormat", "name")
    if format_name != MODEL_FORMAT:
        report.add(file, f"{label}: spec.predictor.model.modelFormat.name must be {MODEL_FORMAT}, got {format_name!r}")
    runtime_name = model.get("runtime")
    if runtime_name != RUNTIME_NAME:
        report.add(file, f"{label}: spec.predictor.model.runtime must be {RUNTIME_NAME}, got {runtime_name!r}")
    storage = model.get("storageUri")
    if not storage and not model.get("storage"):
        report.add(file, f"{label}: spec.predictor.model needs a storageUri (the model folder KServe puts in {KSERVE_MODEL_DIR})")
    elif storage and not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", str(storage)):
        report.add(file, f"{label}: storageUri {storage!r} is not a URI such as gs://BUCKET/PATH or pvc://CLAIM/PATH")
    # ModelSpec.GetProtocol: v1 when unset, and a runtime that does not list it is refused.
    protocol = model.get("protocolVersion") or "v1"
    if protocol != "v2":
        report.add(file, f"{label}: spec.predictor.model.protocolVersion must be v2 (KServe assumes v1 when it is unset; the server speaks v2), got {model.get('protocolVersion')!r}")
    for problem in check_resources(model.get("resources"), f"{label}: spec.predictor.model"):
        report.add(file, problem)

    low, high = predictor.get("minReplicas"), predictor.get("maxReplicas")
    if low is not None and (not isinstance(low, int) or low < 1):
        report.add(file, f"{label}: spec.predictor.minReplicas {low!r}: RawDeployment does not scale to zero; use 1 or more")
    if isinstance(low, int) and isinstance(high, int) and high and low > high:
        report.add(file, f"{label}: spec.predictor.minReplicas {low} exceeds maxReplicas {high}")
    metric = predictor.get("scaleMetric")
    if metric is not None and metric not in RAW_DEPLOYMENT_SCALE_METRICS:
        report.add(file, f"{label}: spec.predictor.scaleMetric {metric!r}: RawDeployment's HPA scales on cpu or memory (concurrency and rps need Knative)")

    # The model is a core Container plus KServe's fields; the rest of the predictor beside the
    # extension fields is a core PodSpec. Validate both as one Pod.
    container = {key: value for key, value in model.items() if key not in MODEL_FIELDS}
    container.setdefault("name", KSERVE_CONTAINER)
    container.setdefault("image", "runtime-image")
    pod_spec = {key: value for key, value in predictor.items() if key not in PREDICTOR_IMPLEMENTATIONS | PREDICTOR_EXTENSION_FIELDS}
    pod_spec["containers"] = [container] + list(pod_spec.get("containers") or [])
    for problem in validator.pod_problems(pod_spec, name or "isvc", f"{label}: spec.predictor"):
        report.add(file, problem.replace("at containers[0]", "at model", 1))

    runtime = runtimes.get(runtime_name)
    if runtime is None:
        if runtimes:
            report.add(file, f"{label}: runtime {runtime_name!r} is not among the runtimes here ({', '.join(sorted(runtimes))})")
        return
    runtime_spec = runtime.get("spec") or {}
    formats = [f.get("name") for f in runtime_spec.get("supportedModelFormats") or [] if isinstance(f, dict)]
    if format_name not in formats:
        report.add(file, f"{label}: runtime {runtime_name} does not list model format {format_name!r} ({formats})")
    protocols = runtime_spec.get("protocolVersions") or []
    if protocols and protocol not in protocols:
        report.add(file, f"{label}: protocol {protocol!r} is not one runtime {runtime_name} supports ({protocols})")
    # KServe appends the model's args to the runtime container's; the pod's grace period is
    # the predictor's. Checked here only when this InferenceService changes either.
    server = next((c for c in runtime_spec.get("containers") or [] if isinstance(c, dict) and c.get("name") == KSERVE_CONTAINER), None)
    grace = predictor.get("terminationGracePeriodSeconds")
    if server is not None and (grace is not None or model.get("args")):
        args = list(server.get("args") or []) + list(model.get("args") or [])
        _, flags, _ = parse_serve_args(args)
        where = f"{label} with runtime {runtime_name}"
        for problem in check_timing(flags, grace if grace is not None else DEFAULT_GRACE_SECONDS, where):
            report.add(file, problem)


# ---------------------------------------------------------------- driver


def manifest_files(paths, report):
    files = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            report.add(display(path), "no such file or folder")
    return files


def load(file, report):
    try:
        with open(file, encoding="utf-8") as handle:
            documents = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    except (OSError, yaml.YAMLError) as error:
        report.add(display(file), f"cannot read YAML: {error}")
        return []
    good = []
    for index, doc in enumerate(documents):
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            report.add(display(file), f"document {index + 1} is not a Kubernetes object (needs apiVersion and kind)")
        else:
            good.append(doc)
    return good


def server_containers(documents):
    """Every visionpool server container of the set: a KServe runtime's, or one whose image names visionpool."""
    found = []
    for file, doc in documents:
        kind, name = doc.get("kind"), dig(doc, "metadata", "name")
        if kind in RUNTIME_KINDS:
            containers = [c for c in dig(doc, "spec", "containers") or [] if isinstance(c, dict)]
        else:
            containers = [c for c in (pod_template(doc) or {}).get("containers") or [] if isinstance(c, dict) and is_server_image(c)]
        for container in containers:
            found.append({"file": file, "object": f"{kind}/{name}", "container": container.get("name"), "args": [str(a) for a in container.get("args") or []]})
    return found


def check_kustomization(document, file, report):
    folder = Path(file).parent
    for resource in document.get("resources") or []:
        if not (folder / resource).exists():
            report.add(display(file), f"resources lists {resource}, which does not exist")


def main(argv=None):
    newest = kubernetes_validate.latest_version()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "deploy")], help="manifest files or folders (default: deploy/)")
    parser.add_argument(
        "--kubernetes-version", default=newest,
        help=f"Kubernetes version whose schemas to validate against (default {newest}, the newest kubernetes-validate bundles; "
             f"it has {', '.join(sorted(set(kv_utils.all_versions()), key=lambda v: tuple(map(int, v.split('.')))))})")
    parser.add_argument(
        "--server-args", action="store_true",
        help="check nothing: print, as JSON, the args of every visionpool server container found "
             "(a list of {file, object, container, args}), for tests that hand them to the real binary")
    options = parser.parse_args(argv)
    version = options.kubernetes_version.lstrip("v")
    known = {kv_utils.major_minor(v) for v in kv_utils.all_versions()}
    if kv_utils.major_minor(version) not in known:
        parser.error(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes {version}; it has {', '.join(sorted(known, key=lambda v: tuple(map(int, v.split('.')))))}")
    validator = Validator(version)

    report = Report()
    files = manifest_files(options.paths, report)
    if not files and not report.problems:
        report.add(" ".join(options.paths), "no *.yaml manifests found")
    documents = []
    for file in files:
        for document in load(file, report):
            documents.append((display(file), document))

    if options.server_args:
        print(json.dumps(server_containers(documents), indent=2))
        return 0 if not report.problems else 1

    runtimes = {}
    for file, doc in documents:
        if doc.get("kind") in RUNTIME_KINDS and dig(doc, "metadata", "name"):
            runtimes[doc["metadata"]["name"]] = doc
    for file, doc in documents:
        api_version, kind = str(doc.get("apiVersion")), doc.get("kind")
        if api_version.startswith("kustomize.config.k8s.io/"):
            check_kustomization(doc, file, report)
        elif api_version.split("/")[0] == KSERVE_GROUP:
            if kind in RUNTIME_KINDS:
                check_runtime(doc, validator, report, file)
            elif kind == "InferenceService":
                check_isvc(doc, validator, runtimes, report, file)
            else:
                report.add(file, f"{kind}: not a KServe kind this checker knows (ClusterServingRuntime, ServingRuntime, InferenceService)")
        else:
            check_core(doc, validator, report, file)
    check_cross_references([(f, d) for f, d in documents if str(d.get("apiVersion")).split("/")[0] != KSERVE_GROUP], report)

    for file, problem in report.problems:
        print(f"{file}: {problem}")
    if report.problems:
        print(f"{len(report.problems)} problem(s) in the manifests", file=sys.stderr)
        return 1
    print(f"OK: {len(documents)} objects in {len(files)} files (Kubernetes {version} schemas, strict; KServe checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
