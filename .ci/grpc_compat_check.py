#!/usr/bin/env python3
"""Drives mDW's `mdw.russell.RussellService` on a running Russell through a client that
grpcio-tools (protoc) generates from proto/mdw/russell/russell.proto, the same generator
family that mDW's Go client comes from, so the wire is checked by code that is not ours
(run by crates/mdw/tests/compat/python_client.rs with the interpreter of .ci/.venv, made
by .ci/validators.sh):

  grpc_compat_check.py ADDR SERVICE
      ADDR is Russell's host:port; SERVICE a managed service's short_name that may be
      restarted. Prints one JSON object: what each method answered, for the test to
      compare with the v1 view of the same moment. Exits 1 on an unexpected gRPC error.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOS = ["mdw/common/common.proto", "mdw/russell/russell.proto"]


def generate(out):
    """protoc via grpcio-tools: Python messages and stubs for both files into `out`."""
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc",
        "-I", os.path.join(REPO, "proto"),
        "--python_out", out, "--grpc_python_out", out,
    ] + PROTOS
    subprocess.run(cmd, check=True)
    sys.path.insert(0, out)


def main(addr, service):
    import grpc

    with tempfile.TemporaryDirectory() as out:
        generate(out)
        from mdw.common import common_pb2 as c
        from mdw.russell import russell_pb2 as m
        from mdw.russell import russell_pb2_grpc as g

        channel = grpc.insecure_channel(addr)
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = g.RussellServiceStub(channel)
        empty = c.Empty()
        r = {}

        health = stub.HealthCheck(c.HealthCheckRequest(), timeout=5)
        r["health_check"] = health.status
        status = stub.GetOrchestratorStatus(empty, timeout=5)
        r["orchestrator"] = {
            "state": m.OrchestratorState.Name(status.state),
            "total": status.total_services,
            "running": status.running_services,
            "healthy": status.healthy_services,
            "services": {
                s.short_name: {"pid": s.pid, "status": m.ServiceStatus.Name(s.status),
                               "version": s.version}
                for s in status.services
            },
        }
        all_status = stub.GetAllServiceStatus(empty, timeout=5)
        r["all_status"] = {s.name: s.pid for s in all_status.services}
        one = stub.GetServiceStatus(m.GetServiceStatusRequest(name=service), timeout=5)
        r["one_status"] = {"name": one.name, "pid": one.pid,
                           "status": m.ServiceStatus.Name(one.status)}

        # Registration as an mDW service does it, then discovery finds it.
        reg = stub.Register(m.RegisterRequest(
            name="pyclient", address="127.0.0.1", port=1, version="9.9.9",
            metadata={"lang": "python"}, tags=["probe"]), timeout=5)
        r["register"] = {"success": reg.success, "has_id": bool(reg.id)}
        beat = stub.Heartbeat(m.HeartbeatRequest(id=reg.id), timeout=5)
        r["heartbeat"] = {"acknowledged": beat.acknowledged,
                          "next_heartbeat_ms": beat.next_heartbeat_ms}
        found = stub.Discover(m.DiscoverRequest(name="pyclient"), timeout=5)
        r["discover"] = [(s.name, s.version, dict(s.metadata)) for s in found.services]
        got = stub.GetService(m.GetServiceRequest(id=reg.id), timeout=5)
        r["get_service"] = got.name
        listed = stub.ListServices(empty, timeout=5)
        r["list_services"] = sorted(s.name for s in listed.services)
        stub.Deregister(m.DeregisterRequest(id=reg.id), timeout=5)
        r["after_deregister"] = sorted(
            s.name for s in stub.ListServices(empty, timeout=5).services)

        # A pushed change: subscribe, then restart the service.
        events = []
        stream = stub.StreamServiceStatus(empty, timeout=60)

        def read():
            try:
                for e in stream:
                    events.append((e.name, m.ServiceStatus.Name(e.current_status)))
                    if e.name == service and e.current_status == m.SERVICE_STATUS_HEALTHY:
                        return
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        restarted = stub.RestartService(m.RestartServiceRequest(name=service), timeout=60)
        r["restart"] = {"success": restarted.success, "pid": restarted.pid}
        reader.join(timeout=30)
        stream.cancel()
        r["stream"] = events

        r["system_health"] = stub.GetSystemHealth(empty, timeout=5).overall_status
        overview = stub.GetSystemOverview(empty, timeout=5)
        r["overview"] = {"total": overview.total_services,
                         "services": sorted(overview.services.keys())}
        r["metrics_total_requests"] = stub.GetMetrics(empty, timeout=5).total_requests
        r["errors"] = len(stub.GetErrors(m.GetErrorsRequest(limit=10), timeout=5).errors)

        pipeline = stub.CreatePipeline(m.CreatePipelineRequest(
            id="py", name="py", steps=[m.PipelineStep(id="a", service_type="turing",
                                                      operation="chat")]), timeout=5)
        r["pipeline"] = {
            "created": pipeline.id,
            "got": stub.GetPipeline(m.GetPipelineRequest(id="py"), timeout=5).name,
            "listed": [p.id for p in stub.ListPipelines(empty, timeout=5).pipelines],
        }
        try:
            stub.ExecutePipeline(m.ExecutePipelineRequest(pipeline_id="py"), timeout=5)
            r["pipeline"]["execute"] = "OK"
        except grpc.RpcError as e:
            r["pipeline"]["execute"] = e.code().name
        stub.DeletePipeline(m.DeletePipelineRequest(id="py"), timeout=5)
        try:
            stub.GetPipeline(m.GetPipelineRequest(id="py"), timeout=5)
            r["pipeline"]["after_delete"] = "OK"
        except grpc.RpcError as e:
            r["pipeline"]["after_delete"] = e.code().name
        try:
            stub.GetServiceStatus(m.GetServiceStatusRequest(name="no-such"), timeout=5)
            r["unknown_service"] = "OK"
        except grpc.RpcError as e:
            r["unknown_service"] = e.code().name

        print(json.dumps(r, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        main(sys.argv[1], sys.argv[2])
    except Exception as e:  # a gRPC error the scenario did not expect: say which
        print(f"grpc_compat_check: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
