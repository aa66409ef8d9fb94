"""The pure pricing of `make bench-cost` (benchmarks/cost_model.py) and of `vigil usage`
(vigil/usage.py): AWS billing units, the price table, GuardDuty's tiers. No timing here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import cost_model as cm

from vigil import usage


@pytest.mark.parametrize(
    ("size", "units"), [(1, 1), (25 * 1024, 1), (25 * 1024 + 1, 2), (1024 * 1024, 41), (0, 1)]
)
def test_kinesis_put_payload_units_are_started_25_kib_chunks(size: int, units: int) -> None:
    # GIVEN a record of `size` bytes WHEN it is put THEN it costs `units` PUT payload units
    assert cm.kinesis_put_units(size) == units


def test_shards_needed_is_the_larger_of_bytes_and_records_against_one_shard() -> None:
    # GIVEN 512 KiB/s in 100 records/s, THEN half a shard; GIVEN 2,000 tiny records/s THEN two
    assert cm.shards_needed(512 * 1024, 100) == pytest.approx(0.5)
    assert cm.shards_needed(10_000, 2000) == pytest.approx(2.0)


def test_lambda_gb_seconds_round_each_duration_up_to_a_millisecond() -> None:
    # GIVEN 100.2 ms at 512 MB WHEN billed THEN 101 ms x 0.5 GB
    assert cm.lambda_gb_s(100.2, 512) == pytest.approx(0.0505)
    assert cm.lambda_gb_s(1000, 1024) == pytest.approx(1.0)


def test_a_billed_duration_stretches_cpu_by_lambdas_share_and_adds_each_aws_round_trip() -> None:
    model = {"full_vcpu_mb": 1769, "aws_call_ms": 8}
    # 512 MB is 0.289 of a vCPU: 10 ms of CPU take 34.6 ms there; 3 calls add 24 ms; rounded up
    assert cm.billed_duration_ms(10.0, 3, 512, model) == 59
    # at or above 1,769 MB the CPU is not stretched
    assert cm.billed_duration_ms(10.0, 0, 3008, model) == 10
    assert cm.billed_duration_ms(0.2, 0, 1769, model) == 1


@pytest.mark.parametrize(("size", "wru"), [(0, 1), (1024, 1), (1025, 2), (4096, 4)])
def test_dynamodb_write_units_per_started_kib(size: int, wru: int) -> None:
    assert cm.ddb_write_units(size) == wru


def test_dynamodb_read_units_are_halved_for_eventually_consistent_reads() -> None:
    # GIVEN a 5 KiB item WHEN read strongly THEN 2 RRU; eventually THEN 1; a missing item costs the minimum
    assert cm.ddb_read_units(5 * 1024, consistent=True) == 2.0
    assert cm.ddb_read_units(5 * 1024) == 1.0
    assert cm.ddb_read_units(0) == 0.5


def test_eventbridge_and_sqs_bill_started_64_kib_chunks() -> None:
    assert cm.eventbridge_events(100) == 1
    assert cm.eventbridge_events(64 * 1024 + 1) == 2
    assert cm.sqs_requests(256 * 1024) == 4


def test_item_size_counts_names_and_values_like_dynamodb() -> None:
    # GIVEN an item with a string, a number, a bool, a list and a map
    item = {
        "pk": {"S": "abc"},  # 2 + 3
        "n": {"N": "12345"},  # 1 + (5 + 1) // 2 + 1 = 5
        "t": {"BOOL": True},  # 1 + 1
        "l": {"L": [{"S": "xy"}]},  # 1 + 3 + (1 + 2)
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + (1 + 1 + 1)
    }
    # WHEN sized THEN every part counts
    assert cm.item_size(item) == 5 + 5 + 2 + 7 + 7
    assert cm.item_size(None) == 0


def test_a_binary_attribute_read_back_from_the_emulator_is_sized_by_its_bytes() -> None:
    # GIVEN a stored item with a compressed document (what moto holds: bytes), made plain as the
    # meter reads items back from the emulator (a JSON round trip)
    import json
    import zlib

    doc = zlib.compress(
        json.dumps({"type": "Execution:Runtime/ReverseShell", "n": list(range(300))}).encode()
    )
    item = {"id": {"S": "f1"}, "finding": {"B": doc}}
    plain = json.loads(json.dumps(item, default=cm.json_default))
    # THEN the Binary counts its bytes (base64 rounds up to 2 bytes), not the length of its repr
    assert len(doc) <= cm.item_size(plain) - len("id") - 2 - len("finding") <= len(doc) + 2
    assert cm.item_size(json.loads(json.dumps(item, default=str))) > 2 * cm.item_size(plain)


def test_a_bench_span_prices_per_vcpu_month_by_service() -> None:
    # GIVEN 10 hosts x 2 vCPU for 100 s: 1,000 records of 2 KiB, 2,000 WRU, one 512 MB function
    m = cm.Measured("t", hosts=10, vcpus_per_host=2, seconds=100.0, records=1000, record_bytes=2048 * 1000,
                    put_units=1000, ddb_write_units=2000.0)  # fmt: skip
    m.functions["f"] = cm.FunctionUse(invocations=40, billed_ms=4000.0, memory_mb=512)
    prices = cm.load_prices()
    # WHEN priced
    usd = cm.price_per_vcpu_month(m, prices)
    # THEN each service scales to 730 h per vCPU: 2,628,000 s / 100 s / 20 vCPU = 1,314x
    scale = 730 * 3600 / 100 / 20
    assert usd["dynamodb_writes"] == pytest.approx(2000 * scale * 0.625 / 1e6)
    assert usd["kinesis_put_units"] == pytest.approx(1000 * scale * 0.014 / 1e6)
    assert usd["lambda_gb_s"] == pytest.approx(4.0 * 0.5 * scale * 0.0000166667)
    assert usd["lambda_requests"] == pytest.approx(40 * scale * 0.2 / 1e6)
    shards = 2048 * 1000 / 100 / (1024 * 1024)  # bytes/s dominate records/s (10/s)
    assert usd["kinesis_shard_hours"] == pytest.approx(shards * 730 * 0.015 / 20)
    # and X-Ray is paid only when the template turns tracing on (its Tracing parameter)
    assert usd["xray_sampled"] == pytest.approx(40 * scale * 0.05 * 5.0 / 1e6)
    assert cm.price_per_vcpu_month(m, prices, tracing=False)["xray_sampled"] == 0.0
    assert cm.fixed_per_month(prices, 9)["xray_reservoir"] == pytest.approx(730 * 3600 * 5.0 / 1e6)
    assert cm.fixed_per_month(prices, 9, tracing=False)["xray_reservoir"] == 0.0


def test_a_price_override_file_replaces_only_its_keys(tmp_path: Path) -> None:
    # GIVEN an override with a new DynamoDB write price
    f = tmp_path / "p.toml"
    f.write_text("[dynamodb]\nwrite_request_unit_per_million = 1.25\n")
    # WHEN loaded through VIGIL_PRICES THEN that key changes and the others stay
    prices = cm.load_prices(env={"VIGIL_PRICES": str(f)})
    assert prices["dynamodb"]["write_request_unit_per_million"] == 1.25
    assert prices["dynamodb"]["read_request_unit_per_million"] == 0.125
    assert prices["kinesis"]["shard_hour"] == 0.015


@pytest.mark.parametrize(
    ("vcpus", "usd"),
    [
        (0, 0.0),
        (100, 150.0),
        (500, 750.0),
        (501, 750.75),
        (5000, 750.0 + 4500 * 0.75),
        (6000, 750.0 + 4500 * 0.75 + 1000 * 0.25),
    ],
)
def test_guardduty_runtime_monitoring_is_tiered_per_vcpu_month(vcpus: int, usd: float) -> None:
    # GIVEN `vcpus` monitored all month WHEN GuardDuty prices them THEN its tiers apply in bands
    assert usage.guardduty_monthly_usd(vcpus) == pytest.approx(usd)
    assert usage.guardduty_usd(vcpus * 730.0) == pytest.approx(usd)
