"""A small, strict kustomize renderer: exactly the subset deploy/k8s uses, so that the tests can
render the base and the overlays without the kustomize/kubectl binaries.

Supported kustomization keys (anything else raises, so the manifests cannot drift into features
that these tests would not render):
- `resources`: files (several YAML documents each) and directories with a kustomization.yaml;
- `configMapGenerator` with `literals` and `behavior` create | merge | replace;
- `patches` with `path` to ONE strategic-merge patch, optionally with a `target` (kind, name,
  namespace, group, version, labelSelector with `key=value` terms);
- `images` (name, newName, newTag, digest), `labels` (pairs, includeTemplates,
  includeSelectors: false), `namespace`.

Generated ConfigMaps get a content-hash suffix and every reference from a pod spec is rewritten,
as kustomize does (the hash itself differs from kustomize's: only its presence matters here).
Strategic merge follows Kubernetes' merge keys for the lists these manifests patch."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "configMapGenerator",
    "images",
    "patches",
}
TARGET_KEYS = {"kind", "name", "namespace", "group", "version", "labelSelector"}
# Kubernetes' patchMergeKey of the lists that strategic merge merges (others are replaced).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "topologySpreadConstraints": "topologyKey",
    "hostAliases": "ip",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(Exception):
    pass


def load_documents(path: Path) -> list[Doc]:
    with path.open() as f:
        docs = [doc for doc in yaml.safe_load_all(f) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: not a Kubernetes object: {doc!r:.80}")
    return docs


def render(directory: Path) -> list[Doc]:
    """Everything `kubectl kustomize directory` would print, as dicts."""
    docs, generated = _build(directory.resolve(), ())
    return _hash_generated(docs, generated)


# --- building one level ---------------------------------------------------------------------


def _build(directory: Path, stack: tuple[Path, ...]) -> tuple[list[Doc], set[str]]:
    if directory in stack:
        raise KustomizeError(f"cycle: {' -> '.join(map(str, (*stack, directory)))}")
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(spec) - KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported keys {sorted(unknown)}")
    if spec.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{kfile}: kind must be Kustomization")

    docs: list[Doc] = []
    generated: set[str] = set()
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            sub_docs, sub_generated = _build(path, (*stack, directory))
            docs += sub_docs
            generated |= sub_generated
        elif path.is_file():
            docs += load_documents(path)
        else:
            raise KustomizeError(f"{kfile}: resource {entry} not found")
    _check_unique(docs, kfile)

    for generator in spec.get("configMapGenerator", []):
        _generate_config_map(docs, generated, generator, kfile)
    for entry in spec.get("patches", []):
        docs = _apply_patch_entry(docs, entry, directory, kfile)
    for image in spec.get("images", []):
        _set_image(docs, image)
    for label in spec.get("labels", []):
        _add_labels(docs, label, kfile)
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = spec["namespace"]
    _check_unique(docs, kfile)
    return docs, generated


def _identity(doc: Doc) -> tuple[str, str, str]:
    group = doc["apiVersion"].rsplit("/", 1)[0] if "/" in doc["apiVersion"] else ""
    return group, doc["kind"], doc["metadata"]["name"]


def _check_unique(docs: list[Doc], where: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for doc in docs:
        key = (*_identity(doc), doc["metadata"].get("namespace", ""))
        if key in seen:
            raise KustomizeError(f"{where}: {key} defined twice")
        seen.add(key)


def _generate_config_map(docs: list[Doc], generated: set[str], generator: Doc, kfile: Path) -> None:
    unknown = set(generator) - {"name", "behavior", "literals"}
    if unknown:
        raise KustomizeError(f"{kfile}: configMapGenerator keys {sorted(unknown)} are not supported")
    name = generator["name"]
    data: dict[str, str] = {}
    for literal in generator.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep or not key:
            raise KustomizeError(f"{kfile}: literal {literal!r} is not KEY=VALUE")
        if key in data:
            raise KustomizeError(f"{kfile}: literal {key} given twice in {name}")
        data[key] = value
    behavior = generator.get("behavior", "create")
    existing = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"{kfile}: ConfigMap {name} exists already (use behavior: merge)")
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
        generated.add(name)
    elif behavior in ("merge", "replace"):
        if len(existing) != 1 or name not in generated:
            raise KustomizeError(f"{kfile}: no generated ConfigMap {name} to {behavior}")
        if behavior == "merge":
            existing[0].setdefault("data", {}).update(data)
        else:
            existing[0]["data"] = data
    else:
        raise KustomizeError(f"{kfile}: behavior {behavior!r}")


# --- patches -----------------------------------------------------------------------------------


def _apply_patch_entry(docs: list[Doc], entry: Doc, directory: Path, kfile: Path) -> list[Doc]:
    unknown = set(entry) - {"path", "target"}
    if unknown or "path" not in entry:
        raise KustomizeError(f"{kfile}: patches entries need `path` (and optionally `target`), got {entry}")
    patches = load_documents(directory / entry["path"])
    if len(patches) != 1:
        raise KustomizeError(f"{entry['path']}: one strategic-merge patch per file")
    patch = patches[0]
    target = entry.get("target")
    if target is not None:
        unknown = set(target) - TARGET_KEYS
        if unknown:
            raise KustomizeError(f"{kfile}: target keys {sorted(unknown)} are not supported")
        matched = [i for i, d in enumerate(docs) if _matches(d, target)]
    else:
        matched = [i for i, d in enumerate(docs) if _identity(d) == _identity(patch)]
    if not matched:
        raise KustomizeError(f"{kfile}: patch {entry['path']} matches no resource")
    if target is None and len(matched) != 1:
        raise KustomizeError(f"{kfile}: patch {entry['path']} matches {len(matched)} resources")
    body = copy.deepcopy(patch)
    if target is not None:  # the patch's own name is not used with a target (as in kustomize)
        body.get("metadata", {}).pop("name", None)
    if body.pop("$patch", None) == "delete":
        return [d for i, d in enumerate(docs) if i not in matched]
    out = list(docs)
    for i in matched:
        merged = strategic_merge(docs[i], body)
        if _identity(merged)[1:] != _identity(docs[i])[1:]:
            raise KustomizeError(f"{entry['path']} would change the kind or name of {docs[i]['metadata']['name']}")
        out[i] = merged
    return out


def _matches(doc: Doc, target: Doc) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    meta = doc["metadata"]
    if "kind" in target and target["kind"] != doc["kind"]:
        return False
    if "name" in target and target["name"] != meta["name"]:
        return False
    if "namespace" in target and target["namespace"] != meta.get("namespace"):
        return False
    if "group" in target and target["group"] != group:
        return False
    if "version" in target and target["version"] != version:
        return False
    if "labelSelector" in target:
        labels = meta.get("labels", {})
        for term in target["labelSelector"].split(","):
            key, sep, value = term.strip().partition("=")
            if not sep or key.endswith("!"):
                raise KustomizeError(f"labelSelector {target['labelSelector']!r}: only key=value terms")
            if labels.get(key) != value:
                return False
    return True


def strategic_merge(base: Any, patch: Any) -> Any:
    """Kubernetes strategic merge for maps and the keyed lists in MERGE_KEYS; `null` deletes a
    key, `$patch: delete` in a keyed list item deletes that item; other lists are replaced."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return _strip(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if key.startswith("$"):
            raise KustomizeError(f"directive {key} is not supported here")
        if value is None:
            out.pop(key, None)
        elif key in out and isinstance(value, list) and isinstance(out[key], list) and key in MERGE_KEYS:
            out[key] = _merge_list(out[key], value, MERGE_KEYS[key])
        elif key in out and isinstance(value, dict):
            out[key] = strategic_merge(out[key], value)
        else:
            out[key] = _strip(value)
    return out


def _merge_list(base: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    result = copy.deepcopy(base)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise KustomizeError(f"list item without merge key {merge_key}: {item!r:.80}")
        index = next((i for i, b in enumerate(result) if b.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip(item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# --- transformers ------------------------------------------------------------------------------


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in POD_TEMPLATE_KINDS:
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if doc["kind"] == "Pod":
        return doc["spec"]
    return None


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    name, _, digest = image.partition("@")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def _set_image(docs: list[Doc], image: Doc) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images keys {sorted(unknown)} are not supported")
    for doc in docs:
        for container in containers(doc):
            name, tag, digest = _split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
                continue
            tag = str(image["newTag"]) if "newTag" in image else tag
            container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest and not tag else "")


def _add_labels(docs: list[Doc], label: Doc, kfile: Path) -> None:
    unknown = set(label) - {"pairs", "includeTemplates", "includeSelectors"}
    if unknown or label.get("includeSelectors"):
        raise KustomizeError(f"{kfile}: labels support pairs and includeTemplates only")
    pairs = {str(k): str(v) for k, v in label["pairs"].items()}
    for doc in docs:
        doc["metadata"].setdefault("labels", {}).update(pairs)
        if label.get("includeTemplates"):
            template = None
            if doc["kind"] in POD_TEMPLATE_KINDS:
                template = doc["spec"]["template"]
            elif doc["kind"] == "CronJob":
                template = doc["spec"]["jobTemplate"]["spec"]["template"]
            if template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _hash_generated(docs: list[Doc], generated: set[str]) -> list[Doc]:
    renamed: dict[str, str] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] in generated:
            name = doc["metadata"]["name"]
            digest = hashlib.sha256(json.dumps(doc.get("data", {}), sort_keys=True).encode()).hexdigest()[:10]
            renamed[name] = f"{name}-{digest}"
            doc["metadata"]["name"] = renamed[name]
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for container in containers(doc):
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef")
                if ref and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("configMapKeyRef")
                if ref and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
        for volume in spec.get("volumes", []):
            refs = [volume.get("configMap")] + [
                s.get("configMap") for s in volume.get("projected", {}).get("sources", [])
            ]
            for ref in refs:
                if ref and ref.get("name") in renamed:
                    ref["name"] = renamed[ref["name"]]
    return docs
