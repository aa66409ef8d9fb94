"""Demo helpers for enriched findings (docs/instance-details.md) on the offline stack.

moto's EC2 holds only the instances a scenario launches; telemetry of any other instance id still
becomes findings, without EC2's details (the ingest counts them in ``instance_details_missing``).
So a scenario that wants a finding with tags and an AMI launches the instance first and re-addresses
the recorded batch to it (``local.scenarios.response.with_instance_id``), as the response demo does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def launch_tagged_instance(
    session: Any, tags: Mapping[str, str], endpoint_url: str | None = None, instance_type: str = "t3.micro"
) -> str:
    """An instance in moto's EC2 (default VPC) with ``tags``, e.g. ``{"Role": "pentest"}`` for the
    suppression demo; returns its id."""
    ec2 = session.client("ec2", endpoint_url=endpoint_url)
    image = next(i for i in ec2.describe_images(Owners=["amazon"])["Images"] if "Platform" not in i)
    out = ec2.run_instances(
        ImageId=image["ImageId"],
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    return str(out["Instances"][0]["InstanceId"])


def summary(finding: Mapping[str, Any]) -> str:
    """One line on what a finding says about its instance: tags, image, type, network, confidence.
    The caller escapes it for the terminal (tags are the instance owner's text)."""
    d = finding.get("resource", {}).get("instanceDetails", {})
    parts: list[str] = []
    tags: Sequence[Mapping[str, str]] = d.get("tags", [])
    if tags:
        parts.append("tags " + ", ".join(f"{t['key']}={t['value']}" for t in tags))
    if "imageId" in d:
        parts.append(d["imageId"] + (f" ({d['imageDescription']})" if d.get("imageDescription") else ""))
    if "instanceType" in d:
        parts.append(d["instanceType"])
    enis = d.get("networkInterfaces") or [{}]
    primary = enis[0]
    if "subnetId" in primary:
        parts.append(f"{primary['subnetId']} / {primary.get('vpcId', '?')}")
    groups = [g.get("groupName") or g.get("groupId", "?") for g in primary.get("securityGroups", [])]
    if groups:
        parts.append("groups " + ", ".join(groups))
    if not tags and "subnetId" not in primary:
        parts.append("no EC2 details (instance unknown to EC2)")
    if "confidence" in finding:
        parts.append(f"confidence {finding['confidence']:g}")
    return " · ".join(parts)
