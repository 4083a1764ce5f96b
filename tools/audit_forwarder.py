#!/usr/bin/env python3
"""Follows the audit trail with AuditLog.Tail and writes one JSON line per stored event (for a SIEM).

    AUDIT_OPERATOR_TOKEN=... python3 tools/audit_forwarder.py --target 127.0.0.1:5161 \
        --state /var/lib/forwarder/sequence >> /var/log/secretsbroker-audit.jsonl

The last sequence written is kept in --state (written after each line is flushed), so a restarted forwarder
resumes where it stopped: nothing twice, nothing skipped. --ca-file switches to TLS (the audit service's
certificate), --cert-file/--key-file add a client certificate when the service requires one.
Needs the `secretsbroker` Python package (clients/python) or its generated stubs on PYTHONPATH.
"""
import argparse
import json
import os
import sys
import time

import grpc
from google.protobuf import json_format

from secretsbroker.v1 import audit_pb2, audit_pb2_grpc


def read_state(path):
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def write_state(path, sequence):
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="ascii") as f:
        f.write(str(sequence))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def channel(args):
    if not args.ca_file:
        return grpc.insecure_channel(args.target)
    with open(args.ca_file, "rb") as f:
        root = f.read()
    key = cert = None
    if args.cert_file:
        with open(args.key_file, "rb") as f:
            key = f.read()
        with open(args.cert_file, "rb") as f:
            cert = f.read()
    return grpc.secure_channel(args.target, grpc.ssl_channel_credentials(root, key, cert))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:5161")
    parser.add_argument("--state", required=True, help="file holding the last sequence written")
    parser.add_argument("--ca-file")
    parser.add_argument("--cert-file")
    parser.add_argument("--key-file")
    parser.add_argument("--max-events", type=int, default=0, help="stop after this many events (0: follow forever)")
    args = parser.parse_args()
    token = os.environ["AUDIT_OPERATOR_TOKEN"]
    after = read_state(args.state)
    written = 0
    while True:
        try:
            stub = audit_pb2_grpc.AuditLogStub(channel(args))
            for stored in stub.Tail(audit_pb2.TailRequest(after_sequence=after), metadata=[("authorization", f"Bearer {token}")]):
                line = json_format.MessageToDict(stored, preserving_proto_field_name=True)
                sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
                sys.stdout.flush()
                after = stored.sequence
                write_state(args.state, after)
                written += 1
                if args.max_events and written >= args.max_events:
                    return 0
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                print(f"audit_forwarder: {error.code().name}: {error.details()}", file=sys.stderr)
                return 1
            print(f"audit_forwarder: {error.code().name}; resuming after sequence {after} in 2 s", file=sys.stderr)
            time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
