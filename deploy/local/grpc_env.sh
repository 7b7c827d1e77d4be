# Sourced by run.sh (issue 3): a dev PKI for gRPC mTLS under .dev/grpc (CA, server cert,
# one client cert per allowlisted CN; generated only if missing, keys 0600, never in git),
# and the GRPC_TLS_* variables the `grpc` Procfile process reads. Set your own GRPC_TLS_*
# to use other certificates.
BIN=${BIN:-.venv/bin}
GRPC_DEV_DIR=${GRPC_DEV_DIR:-$PWD/.dev/grpc}
$BIN/python -m grpc_server.devcerts "$GRPC_DEV_DIR" >/dev/null
export GRPC_TLS_CERT_FILE=${GRPC_TLS_CERT_FILE:-$GRPC_DEV_DIR/server.pem}
export GRPC_TLS_KEY_FILE=${GRPC_TLS_KEY_FILE:-$GRPC_DEV_DIR/server.key}
export GRPC_TLS_CLIENT_CA_FILE=${GRPC_TLS_CLIENT_CA_FILE:-$GRPC_DEV_DIR/ca.pem}
export GRPC_PORT=${GRPC_PORT:-50051}
echo "numbering-service gRPC:  localhost:${GRPC_PORT} hot path: ValidateLease, Lookup (mTLS; client certs per CN in ${GRPC_DEV_DIR}, CA ${GRPC_DEV_DIR}/ca.pem)"
echo "                         localhost:${GRPC_WRITE_PORT:-50052} mutations: Reserve, ExtendReservation, Assign, Release, Recall, Lookup (ADR 1101)"
echo "                 metrics: http://127.0.0.1:${GRPC_METRICS_PORT:-9464}/metrics, mutation pool :${GRPC_WRITE_METRICS_PORT:-9465}"
