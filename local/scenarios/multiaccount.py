"""The multi-account part of `make demo` (and tests/integration/test_offline_multiaccount.py).

The offline stack runs as the administrator of an Organization: deployed with
``MemberAccountIds`` = ``MEMBER`` (``PARAMETERS``). An instance of the member account sends the
recorded reverse-shell batch; its identity document is signed for the member account (the
stack's test identity authority plays AWS), so the finding belongs to the member: its
``accountId``, id and ARN say so, it reaches the administrator's bus and table, and
``vigil findings list --account MEMBER`` shows it. An instance of an account that is not a
member (``STRANGER``), with an equally valid signature, sends the same: its record is refused
whole and dead-lettered with the reason.

    result = run_multiaccount_demo(stack, tap_url, say=console.print, out=print)
    ok = result["ok"]
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

EVENTS = Path(__file__).resolve().parents[2] / "events" / "agent"
MEMBER: Final = "111122223333"
STRANGER: Final = "444455556666"
MEMBER_INSTANCE: Final = "i-0111122223333aaaa"
STRANGER_INSTANCE: Final = "i-0444455556666bbbb"
PARAMETERS: Final[dict[str, str]] = {"MemberAccountIds": MEMBER}
REVERSE_SHELL: Final = "Execution:Runtime/ReverseShell"


def readdress(batch: bytes, instance_id: str, account_id: str) -> bytes:
    """A recorded agent batch (gzip NDJSON) as the agent of ``instance_id`` in ``account_id``
    would send it: the header's instance and account replaced (every occurrence of the instance
    id, as local.scenarios.response.with_instance_id does)."""
    zipped = batch[:2] == b"\x1f\x8b"
    text = gzip.decompress(batch) if zipped else batch
    head, _, rest = text.partition(b"\n")
    first = json.loads(head)
    host = first.get("host") or {}
    old = str(host.get("instance_id") or "")
    host["account_id"] = account_id
    first["host"] = host
    text = json.dumps(first, separators=(",", ":")).encode() + b"\n" + rest
    if old:
        text = text.replace(old.encode(), instance_id.encode())
    return gzip.compress(text, mtime=0) if zipped else text


def _findings(stack: Any, table: str) -> list[dict[str, Any]]:
    from vigil_aws.findings_store import document, plain

    items = stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return [document(plain(i)) for i in items if "severity" in i]


def _drain(stack: Any, url: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        out.extend(json.loads(m["Body"]) for m in msgs)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(msgs)],
        )


def vigil_cli(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `vigil` command (a child process) against the running stack."""
    assert stack.info is not None
    cmd = [sys.executable, "-m", "vigil_cli.main", *args, "--stack", stack.stack_name]
    cmd += ["--endpoint-url", stack.endpoint_url, "--region", stack.region]
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def run_multiaccount_demo(
    stack: Any,
    tap_url: str,
    *,
    say: Callable[[str], None] = print,
    out: Callable[[str], None] = print,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Send the member's and the stranger's batches, show where they went; ``ok`` says whether
    everything landed where it must. ``out`` prints text as is (CLI output, attacker strings)."""
    assert stack.info is not None and stack.pollers is not None
    o = stack.info.outputs
    recorded = (EVENTS / "reverse_shell.ndjson.gz").read_bytes()
    sign = stack.identity.sign_batch  # signs each header for the instance AND account it names
    records = [
        (MEMBER_INSTANCE, sign(readdress(recorded, MEMBER_INSTANCE, MEMBER))),
        (STRANGER_INSTANCE, sign(readdress(recorded, STRANGER_INSTANCE, STRANGER))),
    ]
    say(f"  administrator {stack.info.account_id}, MemberAccountIds={MEMBER}")
    for instance, data in records:
        account = MEMBER if instance == MEMBER_INSTANCE else STRANGER
        say(
            f"  account {account} instance {instance}: reverse_shell batch, {len(data)} bytes, signed for {account}"
        )
    stack.client("kinesis").put_records(
        StreamName=o["TelemetryStreamName"],
        Records=[{"Data": data, "PartitionKey": key} for key, data in records],
    )
    deadline = time.monotonic() + timeout
    bus: list[dict[str, Any]] = []
    member_findings: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        member_findings = [
            f for f in _findings(stack, o["FindingsTableName"]) if f.get("accountId") == MEMBER
        ]
        bus += [e for e in _drain(stack, tap_url) if e.get("detail", {}).get("accountId") == MEMBER]
        if member_findings and any(e["detail-type"] == "Vigil Finding" for e in bus):
            break
        time.sleep(0.1)
    stack.pollers.wait_idle(timeout=timeout)
    bus += [e for e in _drain(stack, tap_url) if e.get("detail", {}).get("accountId") == MEMBER]

    say("  on the administrator's FindingsBus:")
    for e in bus:
        d = e["detail"]
        out(f"    {e['detail-type']}: {d.get('type')} account {d.get('accountId')} {d.get('arn')}")
    say("  in the administrator's FindingsTable:")
    for f in member_findings:
        out(f"    {f['type']} on {f['resource']['instanceDetails']['instanceId']} account {f['accountId']}")

    listed = vigil_cli(stack, "findings", "list", "--account", MEMBER, "--json")
    listed_docs = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    shown = vigil_cli(stack, "findings", "list", "--account", MEMBER)
    say(f"  $ vigil findings list --account {MEMBER}")
    for line in shown.stdout.rstrip().splitlines():
        out(f"    {line}")
    stranger_listed = vigil_cli(stack, "findings", "list", "--account", STRANGER, "--json")

    letters = [
        m for m in _drain(stack, o["IngestDeadLetterQueueUrl"]) if m.get("partitionKey") == STRANGER_INSTANCE
    ]
    say("  refused (IngestDeadLetterQueue):")
    for m in letters:
        out(f"    line {m['line']} of {m['partitionKey']}: {m['reason']}")
    stranger_findings = [
        f for f in _findings(stack, o["FindingsTableName"]) if f.get("accountId") == STRANGER
    ]
    checks = {
        "member finding stored": any(f["type"] == REVERSE_SHELL for f in member_findings),
        "member finding on the bus": any(
            e["detail-type"] == "Vigil Finding" and e["detail"]["type"] == REVERSE_SHELL for e in bus
        ),
        "findings list --account shows only the member's": bool(listed_docs)
        and listed.returncode == 0
        and all(d["accountId"] == MEMBER for d in listed_docs),
        "stranger refused with its reason": len(letters) == 1
        and letters[0]["reason"].startswith(f"account: account '{STRANGER}'"),
        "nothing stored for the stranger": not stranger_findings and stranger_listed.stdout.strip() == "",
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        say(f"  [red]multi-account checks failed: {failed}[/]; cli stderr: {listed.stderr[-300:]!r}")
    return {
        "ok": not failed,
        "checks": checks,
        "member_findings": member_findings,
        "bus": bus,
        "letters": letters,
        "listed": listed_docs,
    }
