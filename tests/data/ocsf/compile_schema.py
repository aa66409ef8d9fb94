"""Compile the OCSF Detection Finding class (and every object it reaches) from a checkout of
github.com/ocsf/ocsf-schema into the one JSON file the tests validate against, offline.

    python tests/data/ocsf/compile_schema.py /path/to/ocsf-schema.git refs/tags/v1.1.0

Resolves what the OCSF server resolves for one class: ``extends`` chains of classes and objects,
``$include`` of includes/ and profiles/ (profile attributes are tagged with their profile: they
apply only when the event lists the profile in ``metadata.profiles``), attribute types and
``is_array`` from dictionary.json, and enums (class/object overrides win). Extensions are not
compiled (Vigil uses none).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CLASS = "events/findings/detection_finding.json"


def main(repo: str, ref: str) -> None:
    def read(path: str) -> Any:
        return json.loads(subprocess.check_output(["git", "--git-dir", repo, "show", f"{ref}:{path}"]))

    commit = subprocess.check_output(["git", "--git-dir", repo, "rev-parse", f"{ref}^{{commit}}"], text=True)
    dictionary = read("dictionary.json")
    dict_attrs: dict[str, Any] = dictionary["attributes"]
    types = {
        name: {k: v for k, v in t.items() if k in ("type", "regex", "max_len", "range", "values")}
        for name, t in dictionary["types"]["attributes"].items()
    }
    object_files = {
        Path(p).stem: p
        for p in subprocess.check_output(
            ["git", "--git-dir", repo, "ls-tree", "--name-only", ref, "objects/"], text=True
        ).split()
    }

    def attributes(doc: dict[str, Any], load: Any) -> dict[str, dict[str, Any]]:
        """A class's or object's own attributes after its includes (profile-tagged)."""
        out: dict[str, dict[str, Any]] = {}
        if doc.get("extends"):
            out = {k: dict(v) for k, v in load(doc["extends"]).items()}
        own = dict(doc.get("attributes", {}))
        for inc in own.pop("$include", []):
            included = read(inc)
            profile = included["name"] if included.get("meta") == "profile" else None
            for name, a in included["attributes"].items():
                merged = {**out.get(name, {}), **a}
                if profile:
                    merged["profile"] = profile
                out[name] = merged
        for name, a in own.items():
            out[name] = {**out.get(name, {}), **a}
        return out

    def resolve(attrs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out = {}
        for name, a in attrs.items():
            d = dict_attrs[name]
            entry: dict[str, Any] = {
                "type": d["type"],
                "is_array": bool(d.get("is_array", False)),
                "requirement": a.get("requirement", d.get("requirement", "optional")),
            }
            enum = a.get("enum", d.get("enum"))
            if enum:
                entry["enum"] = sorted(int(k) if k.lstrip("-").isdigit() else k for k in enum)
            if a.get("profile"):
                entry["profile"] = a["profile"]
            out[name] = entry
        return out

    object_cache: dict[str, dict[str, Any]] = {}

    def object_attrs(name: str) -> dict[str, dict[str, Any]]:
        return attributes(read(object_files[name]), object_attrs)

    def class_attrs(name: str) -> dict[str, dict[str, Any]]:
        path = {"base_event": "events/base_event.json", "finding": "events/findings/finding.json"}[name]
        return attributes(read(path), class_attrs)

    cls_doc = read(CLASS)
    cls = resolve(attributes(cls_doc, class_attrs))
    category = read("categories.json")["attributes"][cls_doc["category"]]
    class_uid = category["uid"] * 1000 + cls_doc["uid"]
    # what the OCSF server fixes per class: the classification ids have exactly one valid value
    # (type_uid: one per activity, class_uid * 100 + activity_id)
    cls["class_uid"]["enum"] = [class_uid]
    cls["category_uid"]["enum"] = [category["uid"]]
    cls["type_uid"]["enum"] = [class_uid * 100 + a for a in cls["activity_id"]["enum"]]
    todo = [a["type"] for a in cls.values() if not a["type"].endswith("_t")]
    while todo:
        name = todo.pop()
        if name in object_cache:
            continue
        doc = read(object_files[name])
        object_cache[name] = {"attributes": resolve(attributes(doc, object_attrs))}
        if doc.get("constraints"):
            object_cache[name]["constraints"] = doc["constraints"]
        todo += [a["type"] for a in object_cache[name]["attributes"].values() if not a["type"].endswith("_t")]
    out = {
        "ocsf_version": read("version.json")["version"],
        "source": {"repository": "https://github.com/ocsf/ocsf-schema", "ref": ref, "commit": commit.strip()},
        "compiled_by": "tests/data/ocsf/compile_schema.py",
        "class": {
            "name": cls_doc["name"],
            "caption": cls_doc["caption"],
            "uid": class_uid,
            "category_uid": category["uid"],
            "attributes": cls,
        },
        "objects": dict(sorted(object_cache.items())),
        "types": types,
    }
    sys.stdout.write(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
