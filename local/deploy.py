"""Deploy the real template.yaml to emulated AWS, the way `sam build && sam deploy` would.

1. Local paths become S3 objects: each function's ``CodeUri`` and each layer's ``ContentUri`` is
   zipped (layers under ``python/`` as in Lambda) and uploaded to a bucket in moto; a state
   machine's ``DefinitionUri`` file is inlined as ``Definition``.
2. samtranslator turns the SAM template into plain CloudFormation (it rejects local paths, hence 1).
3. Resource types moto cannot create are removed with a printed note (``SKIPPED_TYPES``), and
   references to them become placeholders; types moto does not model are reported (moto skips
   them itself and still reports CREATE_COMPLETE).
4. ``create_stack`` and wait for CREATE_COMPLETE; the outputs are returned.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "template.yaml"
ARTIFACT_BUCKET = "vigil-local-artifacts"

# Types moto 5.2.5 models but fails to create from CloudFormation: removed before create_stack.
SKIPPED_TYPES: dict[str, str] = {
    "AWS::SSM::Document": "moto rejects it (ValidationException: Invalid document format None)",
    "AWS::SSM::Association": "not modelled by moto; nothing would run the document anyway",
    # moto delivers to an API destination without the body: local/routing.py stands in for them
    "AWS::Events::Connection": "not modelled by moto; local/routing.py stands in (loopback receivers)",
    "AWS::Events::ApiDestination": "not modelled by moto; local/routing.py stands in (loopback receivers)",
}

_EXCLUDE = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.mypy_cache|tests?)(/|$)|\.py[co]$")

Note = Callable[[str], None]


def zip_dir(path: Path, prefix: str = "") -> bytes:
    """A reproducible zip of ``path`` (sorted entries, fixed timestamps, no caches)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path).as_posix()
            if _EXCLUDE.search(rel) or (rel == "requirements.txt" and prefix):
                continue
            info = zipfile.ZipInfo(prefix + rel, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, file.read_bytes(), zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(path.read_text()))


def package(template: dict[str, Any], s3: Any, base: Path = REPO_ROOT) -> dict[str, Any]:
    """Rewrite local paths to S3 objects / inline definitions (what `sam package` does)."""
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)

    def upload(logical_id: str, data: bytes) -> str:
        key = f"{logical_id}/{hashlib.sha256(data).hexdigest()[:16]}.zip"
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=data)
        return f"s3://{ARTIFACT_BUCKET}/{key}"

    for logical_id, res in template.get("Resources", {}).items():
        props = res.get("Properties") or {}
        if res["Type"] == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = upload(logical_id, zip_dir(base / props["CodeUri"]))
        elif res["Type"] == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            props["ContentUri"] = upload(logical_id, zip_dir(base / props["ContentUri"], prefix="python/"))
        elif res["Type"] == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            from samtranslator.yaml_helper import yaml_parse

            props["Definition"] = yaml_parse((base / props.pop("DefinitionUri")).read_text())
    return template


def translate(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    class _OfflinePolicies(ManagedPolicyLoader):
        """Managed-policy names resolve from samtranslator's bundled map; never ask IAM."""

        def __init__(self) -> None:
            pass

        def load(self) -> dict[str, str]:
            return {}

    return dict(transform(template, dict(parameters), _OfflinePolicies()))


def drop_unsupported(cfn: dict[str, Any], note: Note) -> list[str]:
    """Remove SKIPPED_TYPES (with their references); report types moto will silently skip."""
    from moto.cloudformation.parsing import get_model_map

    modelled = set(get_model_map())
    resources: dict[str, Any] = cfn["Resources"]
    removed = [lid for lid, r in resources.items() if r["Type"] in SKIPPED_TYPES]
    for lid in removed:
        note(f"skipped {lid} ({resources[lid]['Type']}): {SKIPPED_TYPES[resources[lid]['Type']]}")
        del resources[lid]
    # a rule whose target was skipped would make moto's put_events fail for every matching event
    for lid in [k for k, r in resources.items() if r["Type"] == "AWS::Events::Rule"]:
        targets = json.dumps(resources[lid].get("Properties", {}).get("Targets", []))
        if any(f'"{gone}"' in targets for gone in removed):
            note(f"skipped {lid} (AWS::Events::Rule): its target was skipped")
            del resources[lid]
            removed.append(lid)
    for lid, r in resources.items():
        if r["Type"] not in modelled:
            note(f"not emulated {lid} ({r['Type']}): moto does not model it and skips it")
    if removed:
        cfn["Resources"] = _replace_refs(resources, set(removed))
        cfn["Outputs"] = _replace_refs(cfn.get("Outputs", {}), set(removed))
    return removed


def _replace_refs(node: Any, gone: set[str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in gone:
            return f"local-skipped-{node['Ref']}"
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            lid, attr = target if isinstance(target, list) else target.split(".", 1)
            if lid in gone:
                return f"local-skipped-{lid}-{attr}"
        out = {}
        for k, v in node.items():
            if k == "DependsOn":
                deps = [v] if isinstance(v, str) else v
                deps = [d for d in deps if d not in gone]
                if deps:
                    out[k] = deps
                continue
            out[k] = _replace_refs(v, gone)
        return out
    if isinstance(node, list):
        return [_replace_refs(v, gone) for v in node]
    if isinstance(node, str) and "${" in node:
        for lid in gone:
            node = re.sub(r"\$\{" + re.escape(lid) + r"(\.[A-Za-z0-9.]+)?\}", f"local-skipped-{lid}", node)
    return node


def create_stack(
    cfn_client: Any, stack_name: str, cfn: dict[str, Any], parameters: dict[str, str]
) -> dict[str, str]:
    cfn_client.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cfn),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cfn_client.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn_client.describe_stack_events(StackName=stack_name)["StackEvents"]
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in events
            if "FAILED" in e["ResourceStatus"]
        ]
        raise RuntimeError(f"stack {stack_name} is {stack['StackStatus']}: {failed}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def deploy(
    session: Any,
    endpoint_url: str,
    region: str,
    stack_name: str,
    parameters: dict[str, str] | None = None,
    note: Note = print,
    template_path: Path = TEMPLATE,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Package, translate and create the stack; returns (outputs, translated template)."""
    parameters = parameters or {}
    s3 = session.client("s3", endpoint_url=endpoint_url, region_name=region)
    cfn_client = session.client("cloudformation", endpoint_url=endpoint_url, region_name=region)
    template = package(load_template(template_path), s3, base=template_path.parent)
    cfn = translate(template, parameters)
    drop_unsupported(cfn, note)
    outputs = create_stack(cfn_client, stack_name, cfn, parameters)
    return outputs, cfn
