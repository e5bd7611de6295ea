"""A Burndown client in Python, from stubs generated off proto/ with grpc_tools.

server/test/polyglot.test.ts generates the stubs into a temporary folder and runs this
against a test server's gRPC port. It checks what a Python service would rely on:
the hot path (grant, reserve, commit, balance), idempotent replays, the error code and
google.rpc.ErrorInfo reason of a refused reserve, the health service and server
reflection. Any failed check raises; the last line printed is a JSON summary.

Debian's python3-grpcio ships neither grpc_status, grpc_health nor grpc_reflection, and
no Debian package carries google/rpc/status.proto for Python, so google.rpc.Status and
ErrorInfo are described here from their standard field numbers, as the server's SDK
does; health and reflection stubs come from Debian's grpc-proto package.

Usage: client.py --stubs DIR --target HOST:PORT --admin-token T --service-token T --run-id ID
"""

import argparse
import json
import sys
import uuid

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

FieldProto = descriptor_pb2.FieldDescriptorProto
DEADLINE_SECONDS = 10


def rpc_messages():
    """Returns (Status, ErrorInfo) classes for google.rpc.Status and google.rpc.ErrorInfo."""
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)

    def field(message, name, number, kind, label=FieldProto.LABEL_OPTIONAL, type_name=None):
        added = message.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            added.type_name = type_name

    status_file = descriptor_pb2.FileDescriptorProto(
        name="google/rpc/status.proto", package="google.rpc", syntax="proto3", dependency=["google/protobuf/any.proto"]
    )
    status = status_file.message_type.add(name="Status")
    field(status, "code", 1, FieldProto.TYPE_INT32)
    field(status, "message", 2, FieldProto.TYPE_STRING)
    field(status, "details", 3, FieldProto.TYPE_MESSAGE, FieldProto.LABEL_REPEATED, ".google.protobuf.Any")
    pool.Add(status_file)

    details_file = descriptor_pb2.FileDescriptorProto(name="google/rpc/error_details.proto", package="google.rpc", syntax="proto3")
    info = details_file.message_type.add(name="ErrorInfo")
    field(info, "reason", 1, FieldProto.TYPE_STRING)
    field(info, "domain", 2, FieldProto.TYPE_STRING)
    field(info, "metadata", 3, FieldProto.TYPE_MESSAGE, FieldProto.LABEL_REPEATED, ".google.rpc.ErrorInfo.MetadataEntry")
    entry = info.nested_type.add(name="MetadataEntry")
    entry.options.map_entry = True
    field(entry, "key", 1, FieldProto.TYPE_STRING)
    field(entry, "value", 2, FieldProto.TYPE_STRING)
    pool.Add(details_file)

    factory = message_factory.MessageFactory(pool)
    return (
        factory.GetPrototype(pool.FindMessageTypeByName("google.rpc.Status")),
        factory.GetPrototype(pool.FindMessageTypeByName("google.rpc.ErrorInfo")),
    )


Status, ErrorInfo = rpc_messages()


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def error_info(error):
    """Returns the google.rpc.ErrorInfo in an error's grpc-status-details-bin trailer."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = Status()
            status.ParseFromString(value)
            check(status.code == error.code().value[0], f"status details code {status.code} differs from {error.code()}")
            for detail in status.details:
                if detail.type_url.endswith("/google.rpc.ErrorInfo"):
                    info = ErrorInfo()
                    check(detail.Unpack(info), "ErrorInfo did not unpack")
                    return info
    raise AssertionError(f"no ErrorInfo in the trailers of {error.code()}: {error.details()}")


def expect_error(call, code, reason):
    """Calls and expects an error with this status code and ErrorInfo reason."""
    try:
        call()
    except grpc.RpcError as error:
        check(error.code() == code, f"expected {code}, got {error.code()}: {error.details()}")
        info = error_info(error)
        check(info.reason == reason, f"expected reason {reason}, got {info.reason}")
        check(info.domain == "burndown.dev", f"unexpected ErrorInfo domain {info.domain}")
        return {"code": error.code().name, "reason": info.reason, "metadata": dict(info.metadata)}
    raise AssertionError(f"expected {code} {reason}, the call succeeded")


def ledger_flow(channel, args):
    """Runs the hot path and returns what it saw."""
    from burndown.v1 import admin_service_pb2, admin_service_pb2_grpc, ledger_service_pb2, ledger_service_pb2_grpc, types_pb2
    from google.protobuf import duration_pb2

    admin = admin_service_pb2_grpc.AdminServiceStub(channel)
    ledger = ledger_service_pb2_grpc.LedgerServiceStub(channel)
    as_admin = [("authorization", f"Bearer {args.admin_token}")]
    as_service = [("authorization", f"Bearer {args.service_token}")]
    run = args.run_id
    credit_type = f"py_credits_{run}"
    customer = f"py-customer-{run}"

    admin.CreateCreditType(
        admin_service_pb2.CreateCreditTypeRequest(
            credit_type=admin_service_pb2.CreditType(credit_type_id=credit_type, display_name="Python credits"),
            request_id=f"py-ct-{run}",
        ),
        metadata=as_admin,
        timeout=DEADLINE_SECONDS,
    )
    grant_request = ledger_service_pb2.GrantRequest(
        customer_id=customer,
        credit_type_id=credit_type,
        amount=1000,
        source=types_pb2.GRANT_SOURCE_PURCHASE,
        reason_code="python_polyglot",
        request_id=f"py-grant-{run}",
    )
    granted = ledger.Grant(grant_request, metadata=as_service, timeout=DEADLINE_SECONDS)
    replayed = ledger.Grant(grant_request, metadata=as_service, timeout=DEADLINE_SECONDS)
    check(replayed.lot.grant_id == granted.lot.grant_id, "a replayed Grant made a second lot")
    changed = ledger_service_pb2.GrantRequest()
    changed.CopyFrom(grant_request)
    changed.amount = 999
    reused = expect_error(
        lambda: ledger.Grant(changed, metadata=as_service, timeout=DEADLINE_SECONDS),
        grpc.StatusCode.FAILED_PRECONDITION,
        "REQUEST_ID_REUSED",
    )

    reserved = ledger.Reserve(
        ledger_service_pb2.ReserveRequest(
            customer_id=customer,
            credits=types_pb2.CreditAmount(credit_type_id=credit_type, amount=300),
            ttl=duration_pb2.Duration(seconds=60),
            request_id=f"py-reserve-{run}",
        ),
        metadata=as_service,
        timeout=DEADLINE_SECONDS,
    )
    ledger.Commit(
        ledger_service_pb2.CommitRequest(reservation_id=reserved.reservation.reservation_id, amount=120, request_id=f"py-commit-{run}"),
        metadata=as_service,
        timeout=DEADLINE_SECONDS,
    )
    balance = ledger.GetBalance(
        ledger_service_pb2.GetBalanceRequest(customer_id=customer, credit_type_id=credit_type), metadata=as_service, timeout=DEADLINE_SECONDS
    ).balances[0]
    check((balance.available, balance.burned, balance.held, balance.granted) == (880, 120, 0, 1000), f"unexpected balance {balance}")

    insufficient = expect_error(
        lambda: ledger.Reserve(
            ledger_service_pb2.ReserveRequest(
                customer_id=customer,
                credits=types_pb2.CreditAmount(credit_type_id=credit_type, amount=5000),
                request_id=f"py-too-much-{run}",
            ),
            metadata=as_service,
            timeout=DEADLINE_SECONDS,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_CREDITS",
    )
    return {
        "balance": {"available": balance.available, "burned": balance.burned, "held": balance.held, "granted": balance.granted},
        "requestIdReused": reused,
        "insufficient": insufficient,
    }


def health_checks(channel):
    """Asks the standard health service, without an API key."""
    from health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    statuses = {}
    for service in ("", "burndown.v1.LedgerService", "burndown.v1.AdminService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE_SECONDS)
        statuses[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    try:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=DEADLINE_SECONDS)
        raise AssertionError("Check of an unknown service succeeded")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.NOT_FOUND, f"unknown service: expected NOT_FOUND, got {error.code()}")
    return statuses


def load_files(encoded_files):
    """Builds a descriptor pool from reflected files, adding each after its imports."""
    pending = {}
    for encoded in encoded_files:
        file = descriptor_pb2.FileDescriptorProto()
        file.ParseFromString(encoded)
        pending[file.name] = file
    pool, added = descriptor_pool.DescriptorPool(), set()
    for _ in range(len(pending)):
        ready = [f for f in pending.values() if f.name not in added and all(d in added for d in f.dependency)]
        check(ready or len(added) == len(pending), f"reflected files with unresolved imports: {set(pending) - added}")
        for file in ready:
            pool.Add(file)
            added.add(file.name)
    return pool


def reflection_checks(channel):
    """Lists and describes services through server reflection (v1 and v1alpha), without an API key."""
    from reflection.v1 import reflection_pb2, reflection_pb2_grpc
    from reflection.v1alpha import reflection_pb2 as alpha_pb2, reflection_pb2_grpc as alpha_pb2_grpc

    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="burndown.v1.LedgerService"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="google.rpc.ErrorInfo"),
    ]
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    listed, ledger_files, error_files = list(stub.ServerReflectionInfo(iter(requests), timeout=DEADLINE_SECONDS))
    services = sorted(s.name for s in listed.list_services_response.service)
    pool = load_files(ledger_files.file_descriptor_response.file_descriptor_proto)
    reserve = pool.FindServiceByName("burndown.v1.LedgerService").FindMethodByName("Reserve")
    check(reserve.input_type.full_name == "burndown.v1.ReserveRequest", f"Reserve takes {reserve.input_type.full_name}")
    check("request_id" in reserve.input_type.fields_by_name, "ReserveRequest has no request_id")
    error_pool = load_files(error_files.file_descriptor_response.file_descriptor_proto)
    check(error_pool.FindMessageTypeByName("google.rpc.ErrorInfo").fields_by_name["reason"].number == 1, "ErrorInfo.reason is not field 1")

    alpha = alpha_pb2_grpc.ServerReflectionStub(channel)
    [alpha_listed] = list(alpha.ServerReflectionInfo(iter([alpha_pb2.ServerReflectionRequest(list_services="")]), timeout=DEADLINE_SECONDS))
    alpha_services = sorted(s.name for s in alpha_listed.list_services_response.service)
    check(alpha_services == services, f"v1alpha lists {alpha_services}, v1 lists {services}")
    return {"services": services, "reserveInput": reserve.input_type.full_name, "ledgerFiles": sorted(pool_files(ledger_files))}


def pool_files(response):
    names = []
    for encoded in response.file_descriptor_response.file_descriptor_proto:
        file = descriptor_pb2.FileDescriptorProto()
        file.ParseFromString(encoded)
        names.append(file.name)
    return names


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--service-token", required=True)
    parser.add_argument("--run-id", default=uuid.uuid4().hex[:12])
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)
    with grpc.insecure_channel(args.target) as channel:
        summary = {"ledger": ledger_flow(channel, args), "health": health_checks(channel), "reflection": reflection_checks(channel)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
