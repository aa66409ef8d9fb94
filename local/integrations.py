"""What ``make demo`` needs to show the integrations on the offline stack (the integrator calls these).

    with started(console, parameters={**DEMO_PARAMETERS, ...}) as stack:
        prepare(stack)                     # before any finding is published
        ... send the batches, wait for the findings ...
        show_exports(stack, out)           # the export objects in S3 and the findings in Security Hub
        local.routing.demo_routing(findings, out)   # Slack / Jira payloads as delivered (loopback)

``out`` must print text as is (``print``, or ``console.out(s, highlight=False)``): the payloads
carry attacker strings such as ``[x|hxxp://evil]`` that a rich markup string would interpret.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any, Final

from vigil_aws import parquet

DEMO_PARAMETERS: Final[dict[str, str]] = {
    "ExportFindingsToS3": "true",
    "SecurityHubImport": "true",
    "SecurityLakeBucketName": "vigil-demo-security-lake",  # created by prepare(); OCSF objects land here
}
SECURITY_LAKE_DEMO_BUCKET: Final = DEMO_PARAMETERS["SecurityLakeBucketName"]


def prepare(stack: Any) -> None:
    """Enable (emulated) Security Hub and create the stand-in Security Lake bucket."""
    stack.client("securityhub").enable_security_hub()
    stack.client("s3").create_bucket(Bucket=SECURITY_LAKE_DEMO_BUCKET)


def _objects(s3: Any, bucket: str) -> list[tuple[str, list[dict[str, Any]]]]:
    out = []
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        if o["Key"].endswith(".parquet"):  # Security Lake's OCSF objects
            out.append((o["Key"], parquet.read(body)))
        else:
            out.append((o["Key"], [json.loads(x) for x in gzip.decompress(body).splitlines()]))
    return out


def show_exports(stack: Any, out: Callable[[str], None] = print) -> dict[str, int]:
    """Print the export objects (GuardDuty layout and Security Lake layout) and the Security Hub
    findings; returns their counts."""
    outputs = stack.info.outputs
    s3 = stack.client("s3")
    exported = _objects(s3, outputs["ExportBucketName"])
    for key, findings in exported:
        out(f"s3://{outputs['ExportBucketName']}/{key}")
        for f in findings:
            out(f"    {f['type']}  severity {f['severity']:g}  id {f['id']}")
    lake = _objects(s3, SECURITY_LAKE_DEMO_BUCKET)
    for key, events in lake:
        out(f"s3://{SECURITY_LAKE_DEMO_BUCKET}/{key}")
        for e in events:
            out(f"    OCSF class {e['class_uid']} type_uid {e['type_uid']}  {e['finding_info']['types'][0]}")
    hub = stack.client("securityhub").get_findings()["Findings"]
    for h in hub:
        out(f"Security Hub: {h['Types'][0]}  {h['Severity']['Label']}  {h['Id']}")
    return {
        "s3_objects": len(exported),
        "security_lake_objects": len(lake),
        "security_hub_findings": len(hub),
    }
