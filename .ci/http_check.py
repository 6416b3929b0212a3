#!/usr/bin/env python3
"""Checks Russell's HTTP answers with real, independent parsers (run by
crates/mdw/tests/cli/http.rs with the interpreter of .ci/.venv, made by .ci/validators.sh):

  http_check.py metrics FILE
      parses FILE with prometheus_client's text-format parser and prints one JSON object:
      {"families": {name: type}, "samples": [[name, labels, value], ...]}
  http_check.py openapi SPEC CASES
      validates every recorded response in CASES (a JSON list of
      {"method", "path", "status", "content_type", "body"}) against the OpenAPI file SPEC
      with openapi-core; prints "ok N" or the first failure and exits 1.
"""
import json
import sys


def metrics(path):
    from prometheus_client.parser import text_string_to_metric_families

    with open(path, encoding="utf-8") as f:
        text = f.read()
    families, samples = {}, []
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples.append([s.name, s.labels, s.value])
    print(json.dumps({"families": families, "samples": samples}))


def openapi(spec, cases_path):
    from openapi_core import OpenAPI
    from openapi_core.testing import MockRequest, MockResponse

    api = OpenAPI.from_file_path(spec)
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    for i, c in enumerate(cases):
        request = MockRequest("http://127.0.0.1:9101", c["method"].lower(), c["path"])
        response = MockResponse(
            data=c["body"].encode("utf-8"),
            status_code=c["status"],
            content_type=c["content_type"],
        )
        try:
            api.validate_response(request, response)
            if c.get("schema"):
                # A body part the response schema leaves open (an SSE data line).
                from jsonschema_path import SchemaPath
                from openapi_core.validation.schemas import oas31_schema_validators_factory

                schema = SchemaPath.from_file_path(spec) / "components" / "schemas" / c["schema"]
                oas31_schema_validators_factory.create(schema).validate(json.loads(c["body"]))
        except Exception as e:  # noqa: BLE001 - report any validation failure
            print(f"case {i} ({c['method']} {c['path']} -> {c['status']}): {e!r}")
            for detail in getattr(e, "schema_errors", None) or []:
                print(f"  {detail}")
            if e.__cause__ is not None:
                print(f"  cause: {e.__cause__!r}")
                for detail in getattr(e.__cause__, "schema_errors", None) or []:
                    print(f"  {detail.message} at {list(detail.absolute_path)}")
            sys.exit(1)
    print(f"ok {len(cases)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "metrics":
        metrics(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "openapi":
        openapi(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
