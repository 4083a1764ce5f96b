"""Generated protobuf and gRPC stubs (scripts/generate_stubs.sh). Do not edit."""
